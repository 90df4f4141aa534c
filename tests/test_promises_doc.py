"""docs/promises.md names, for every promise, the tests that hold it: they must exist."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_test_named_in_the_promises_exists():
    text = (ROOT / "docs" / "promises.md").read_text()
    references = re.findall(r"`tests/([\w/]+\.py)::(\w+)`", text)
    assert len(references) >= 30
    missing = []
    for file, name in references:
        path = ROOT / "tests" / file
        if not path.exists() or not re.search(rf"^def {name}\(", path.read_text(), re.M):
            missing.append(f"tests/{file}::{name}")
    assert not missing, missing


def test_every_row_names_a_test_and_the_readme_links_here():
    text = (ROOT / "docs" / "promises.md").read_text()
    rows = [line for line in text.splitlines()
            if line.startswith("| ") and not line.startswith("| promise")]
    assert rows and all("`tests/" in row for row in rows), [r for r in rows if "`tests/" not in r]
    assert "docs/promises.md" in (ROOT / "README.md").read_text()
