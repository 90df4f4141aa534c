"""The README is the front door: its Python examples run as written, in order."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    pytest.importorskip("sympy")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(tmp_path)                 # nn.save writes model.npz here
    namespace = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)   # noqa: S102
    assert (tmp_path / "model.npz").exists()
    assert namespace["report"].passed


def test_quickstart_has_two_command_lines():
    text = README.read_text()
    block = re.search(r"## Quickstart\s+```bash\n(.*?)```", text, flags=re.S).group(1)
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(lines) == 2
    assert "convgrad demo" in lines[0] and "pytest" in lines[1]
    assert lines[1] in (README.parent / ".ci" / "run").read_text()
