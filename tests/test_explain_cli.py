"""`convgrad explain` (convgrad.explain.run through convgrad.apps.cli.main) and the figure."""
from __future__ import annotations

import pytest

pytest.importorskip("sympy")
pytest.importorskip("matplotlib")

from convgrad.apps.cli import main  # noqa: E402
from convgrad.explain import derive, draw_case, naive_identities, run  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_case_1d_prints_the_equations(capsys):
    assert main(["explain", "--case", "1d"]) == 0
    out = capsys.readouterr().out
    for line in ["y1 = b + w1*x1 + w2*x2",
                 "y3 = b + w1*x3 + w2*x4",
                 "dx2 = dL/dx2 = dy1*w2 + dy2*w1",
                 "dw1 = dL/dw1 = dy1*x1 + dy2*x2 + dy3*x3",
                 "db = dL/db = dy1 + dy2 + dy3",
                 "dy padded = [0, dy1, dy2, dy3, 0]",
                 "rot180(w) = [w2, w1]",
                 "HOLDS"]:
        assert line in out, line
    assert "Jacobians" in out


def test_default_is_the_1d_case(capsys):
    assert main(["explain"]) == 0
    assert "x (4,), w (2,)" in capsys.readouterr().out


def test_case_2d_and_stride2(capsys):
    assert main(["explain", "--case", "2d"]) == 0
    out = capsys.readouterr().out
    assert "dx22 = dL/dx22 = dy11*w22 + dy12*w21 + dy21*w12 + dy22*w11" in out
    assert main(["explain", "--case", "stride2"]) == 0
    out = capsys.readouterr().out
    assert "stride 2" in out
    assert "dy spread = [dy1, 0, dy2]" in out           # the zero inserted
    assert "dy padded = [0, 0, dy1, 0, dy2, 0, 0]" in out
    assert "HOLDS" in out


def test_explicit_shapes_and_geometry(capsys):
    argv = ["explain", "--x", "4,4", "--w", "2,2", "--stride", "2", "--padding", "1:0,0:1",
            "--dilation", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "padding ((1, 0), (0, 1))" in out and "HOLDS" in out
    assert main(["explain", "--x", "5", "--w", "3", "--padding", "same", "--stride", "2"]) == 0
    assert "HOLDS" in capsys.readouterr().out


def test_case_keywords_override(capsys):
    assert main(["explain", "--case", "2d", "--stride", "2", "--padding", "1"]) == 0
    assert "x (3, 3), w (2, 2), stride 2, padding 1" in capsys.readouterr().out


def test_latex(capsys):
    assert main(["explain", "--case", "1d", "--latex"]) == 0
    out = capsys.readouterr().out
    assert "\\frac{\\partial L}{\\partial x_{2}} &= dy_{1} w_{2} + dy_{2} w_{1}" in out
    assert "w_{2}" in out and "\\begin{aligned}" in out
    assert "y1 = " not in out                             # LaTeX instead of text


def test_latex_names_with_underscores():
    from convgrad.explain import latex
    out = latex(derive((10, 1), (2, 1)))
    assert "x_{10,1}" in out


def test_png(tmp_path, capsys):
    path = tmp_path / "sub" / "file.png"
    assert main(["explain", "--case", "stride2", "--png", str(path)]) == 0
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert str(path) in capsys.readouterr().out


def test_numeric(capsys):
    assert main(["explain", "--case", "stride2", "--numeric"]) == 0
    out = capsys.readouterr().out
    assert "max |numerical - identity|" in out and "max |backward - identity|" in out
    worst = float(out.split("largest difference from the identities:")[1].split()[0])
    assert worst < 1e-7


@pytest.mark.parametrize("argv, message", [
    (["--x", "4"], "give both"),
    (["--w", "2"], "give both"),
    (["--case", "1d", "--x", "4", "--w", "2"], "not both"),
    (["--x", "2", "--w", "3"], "larger than the padded input"),
    (["--x", "2,2,2", "--w", "1,1,1"], "1-D or"),
    (["--x", "4,4", "--w", "2"], "as many axes"),
    (["--x", "4", "--w", "2", "--stride", "0"], "stride must be a positive int"),
    (["--x", "40,40", "--w", "2,2"], "smaller case"),
])
def test_bad_arguments_return_2(argv, message, capsys):
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convgrad explain: ") and message in err


def test_run_directly(capsys):
    assert run(case="nope") == 2
    assert "unknown case 'nope'" in capsys.readouterr().err
    assert run(x_shape=(4,), w_shape=(2,), stride=1, padding="valid") == 0


def test_figure_returns_a_figure(tmp_path):
    from matplotlib.figure import Figure
    fig = draw_case(derive((4, 4), (2, 2), stride=2, padding=1), tmp_path / "a.png")
    assert isinstance(fig, Figure)
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"x11", "dy33", "w22", "0"} <= texts             # cells labeled with symbols
    assert any("dy11" in t and "w22" in t for t in texts)   # dx cells: expressions
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG_MAGIC
    # any rule can be drawn, the naive one included (its shapes are wrong, not an error)
    draw_case(derive((5,), (3,), stride=2), tmp_path / "b.png", rule=naive_identities)


@pytest.mark.parametrize("blocked, argv, needs", [
    ("sympy", ["explain"], "sympy"),
    ("matplotlib", ["explain", "--png", "never.png"], "matplotlib"),
])
def test_missing_extra_is_reported(blocked, argv, needs, tmp_path):
    import subprocess
    import sys
    code = (f"import sys; sys.modules[{blocked!r}] = None; "
            f"from convgrad.apps.cli import main; sys.exit(main({argv!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert f"needs {needs}" in result.stderr and "convgrad[explain]" in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "never.png").exists()


def test_wide_jacobians_are_summarized(capsys):
    assert main(["explain", "--x", "6,5", "--w", "2,2"]) == 0
    out = capsys.readouterr().out
    assert "20 x 30, too wide to print" in out and "HOLDS" in out
