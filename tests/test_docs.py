"""The documentation's tables stay in step with the tests behind them."""
import re
from pathlib import Path

from test_errors import ERRORS

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_error_table_lists_every_tested_row_and_nothing_else():
    text = (DOCS / "errors.md").read_text()
    documented = re.findall(r"^\| `([A-Za-z0-9-]+)` \|", text, flags=re.M)
    tested = [row[0] for row in ERRORS]
    assert sorted(documented) == sorted(tested)
