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


def _short(text, n=170):
    """As docs/make_errors_table.py shortens a message for the table."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 3].rstrip() + "..."


def test_error_table_shows_convgrad_messages_as_they_are_now():
    """The table's convgrad column is what each call raises today (regenerate it with
    `python docs/make_errors_table.py` when a message changes)."""
    text = (DOCS / "errors.md").read_text()
    stale = []
    for id_, call, _error, _fragments in ERRORS:
        try:
            call()
            ours = "NO ERROR"
        except Exception as e:          # noqa: BLE001 - every row raises by design
            ours = f"{type(e).__name__}: `{_short(e)}`"
        if f"| `{id_}` |" in text and f"| {ours} |" not in text:
            stale.append(id_)
    assert not stale, f"docs/errors.md shows old messages for {stale}"
