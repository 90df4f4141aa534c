"""examples/walkthrough.ipynb executes top to bottom, and its key cells say what they should."""
from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("sympy")
pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "walkthrough.ipynb"


def _text(cell) -> str:
    """The stream and text/plain outputs of one executed cell."""
    parts = []
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "".join(parts)


def _tagged(nb, tag: str):
    cells = [c for c in nb.cells if tag in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, f"expected one cell tagged {tag!r}, found {len(cells)}"
    return cells[0]


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=60, kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOK.parent)}})
    start = time.perf_counter()
    client.execute()              # raises CellExecutionError on the first failing cell
    return nb, time.perf_counter() - start


def test_notebook_executes_without_errors(executed):
    nb, _ = executed
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not [o for o in cell.outputs if o.get("output_type") == "error"]


def test_stride1_recipe_mismatches_at_stride2(executed):
    out = _text(_tagged(executed[0], "naive"))
    assert "shapes differ" in out
    assert "naive recipe matches the numerical gradient: False" in out


def test_general_rule_matches(executed):
    out = _text(_tagged(executed[0], "general"))
    assert "general rule matches the numerical gradient: True" in out
    error = float(re.search(r"max \|dx - numerical\| = ([0-9.e+-]+)", out).group(1))
    assert error < 1e-6


def test_tiny_cnn_learns(executed):
    out = _text(_tagged(executed[0], "train"))
    accuracies = [float(a) for a in re.findall(r"test accuracy ([0-9.]+)", out)]
    assert len(accuracies) == 3 and accuracies[-1] > 0.85


def test_saved_notebook_has_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(c.get("execution_count") for c in code)
    assert "shapes differ" in _text(_tagged(nb, "naive"))
