"""What a new user meets first: help(convgrad), the README's Quickstart, the extras."""
import pydoc
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import convgrad

ROOT = Path(__file__).resolve().parent.parent


def _section(text: str, title: str) -> str:
    match = re.search(rf"^{title}\n(.*?)(?=^[A-Z][A-Z ]*\n|\Z)", text, flags=re.S | re.M)
    return match.group(1) if match else ""


def test_help_lists_the_public_api_only():
    text = pydoc.render_doc(convgrad, renderer=pydoc.plaintext)
    functions = set(re.findall(r"^    (\w+)\(", _section(text, "FUNCTIONS"), flags=re.M))
    assert functions == set(convgrad.__all__)
    description = _section(text, "DESCRIPTION")
    assert "NumPy alone" in description                    # a paragraph on what it is
    for name in ("nn", "cs231n", "gradcheck", "pooling", "explain"):
        assert f"convgrad.{name}" in description, name
    for noise in ("lowering", "as_float_array", "require"):
        assert noise not in _section(text, "FUNCTIONS") + _section(text, "DATA")


def test_every_exported_name_exists_and_import_convgrad_needs_numpy_alone():
    for name in convgrad.__all__:
        assert callable(getattr(convgrad, name)), name
    code = ("import sys, convgrad; print(convgrad.nn.Conv2d.__name__, "
            "convgrad.cs231n.rel_error.__name__, convgrad.gradcheck.gradcheck.__name__); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sympy', 'matplotlib', "
            "'sklearn', 'torch', 'PIL', 'tqdm', 'scipy'}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT / "src")}, timeout=120)
    assert result.stdout == "Conv2d rel_error gradcheck\n[]\n", result.stderr


def test_the_quickstart_explains_pytorch_and_ci_never_uses_the_cpu_index():
    readme = (ROOT / "README.md").read_text()
    assert "oracle" in readme and "download.pytorch.org/whl/cpu" in readme
    assert "reference machine (Intel Xeon" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert "download.pytorch.org" not in ci and "index-url" not in ci


def test_pillow_is_in_the_extras_that_read_images():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for extra in ("demo", "test"):
        assert any(req.lower().startswith("pillow") for req in extras[extra]), extra
