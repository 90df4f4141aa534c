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


def test_explicit_sizes_and_geometry(capsys):
    argv = ["explain", "--input-size", "4,4", "--kernel-size", "2,2", "--stride", "2",
            "--padding", "1:0,0:1", "--dilation", "1"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "padding ((1, 0), (0, 1))" in out and "HOLDS" in out
    assert main(["explain", "--input-size", "5", "--kernel-size", "3", "--padding", "same",
                 "--stride", "2"]) == 0
    assert "HOLDS" in capsys.readouterr().out


@pytest.mark.parametrize("flag, value", [("--stride", "3"), ("--padding", "1"),
                                         ("--dilation", "2"), ("--stride", "1")])
def test_case_refuses_geometry_options(flag, value, capsys):
    assert main(["explain", "--case", "stride2", flag, value]) == 2
    err = capsys.readouterr().err
    assert f"--case stride2 sets the stride, padding and dilation itself; {flag} does not " \
           f"apply" in err


def test_x_and_w_point_to_the_spatial_options(capsys):
    assert main(["explain", "--x", "4,4", "--w", "2,2"]) == 2
    err = capsys.readouterr().err
    assert "use --input-size 4,4" in err and "full array shape" in err
    assert main(["explain", "--w", "2"]) == 2
    assert "use --kernel-size 2" in capsys.readouterr().err


def test_chain_rule_line_says_what_dy_is(capsys):
    assert main(["explain", "--case", "1d"]) == 0
    line = next(v for v in capsys.readouterr().out.splitlines() if "Chain rule" in v)
    assert "dy_i/dx_j" not in line and "dy_i = " in line and "J[i, j]" in line


def test_latex(capsys):
    assert main(["explain", "--case", "1d", "--latex"]) == 0
    out = capsys.readouterr().out
    dy1, dy2 = (f"\\tfrac{{\\partial L}}{{\\partial y_{{{i}}}}}" for i in (1, 2))
    assert f"\\frac{{\\partial L}}{{\\partial x_{{2}}}} &= {dy1} w_{{2}} + {dy2} w_{{1}}" in out
    assert "dy_{" not in out                              # never d times y
    assert "y1 = " not in out                             # LaTeX instead of text
    # every math line sits in a \[ ... \] block; the rest are % comments
    inside = False
    for line in out.splitlines():
        if line == "\\[":
            assert not inside
            inside = True
        elif line == "\\]":
            assert inside
            inside = False
        elif not inside:
            assert line.startswith("%"), line
    assert not inside and out.count("\\[") >= 10


def test_latex_document(capsys, tmp_path):
    import shutil
    import subprocess
    assert main(["explain", "--input-size", "5", "--kernel-size", "3", "--stride", "2",
                 "--latex-document"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("\\documentclass") and out.rstrip().endswith("\\end{document}")
    assert "\\usepackage{amsmath}" in out and "MaxMatrixCols" in out
    assert main(["explain", "--latex", "--latex-document"]) == 2
    assert main(["explain", "--numeric", "--latex-document"]) == 2
    if shutil.which("pdflatex"):                          # compile it when TeX is there
        (tmp_path / "d.tex").write_text(out)
        result = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                                 "d.tex"], cwd=tmp_path, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stdout[-2000:]
        assert (tmp_path / "d.pdf").exists()


def test_latex_names_with_underscores():
    from convgrad.explain import latex
    out = latex(derive((10, 1), (2, 1)))
    assert "x_{10,1}" in out


def test_png(tmp_path, capsys):
    path = tmp_path / "file.png"
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
    (["--input-size", "4"], "give both"),
    (["--kernel-size", "2"], "give both"),
    (["--case", "1d", "--input-size", "4", "--kernel-size", "2"], "not both"),
    (["--input-size", "2", "--kernel-size", "3"], "larger than the padded input"),
    (["--input-size", "2,2,2", "--kernel-size", "1,1,1"],
     "--input-size 2,2,2 has 3 sizes; give L (1-D) or H,W (2-D)"),
    (["--input-size", "4,4", "--kernel-size", "2"],
     "--kernel-size 2 has 1 size but --input-size 4,4 has 2"),
    (["--input-size", "4", "--kernel-size", "2", "--stride", "0"],
     "stride must be a positive int"),
    (["--input-size", "40,40", "--kernel-size", "2,2"], "--max-entries 1600"),
    (["--input-size", "4", "--kernel-size", "2", "--output-padding", "1"],
     "--output-padding applies to a transposed"),
    (["--input-size", "4", "--kernel-size", "2", "--transposed"], "applies to --html only"),
    (["--html", "x.html", "--latex"], "--latex does not apply with --html"),
    (["--html", "x.html", "--png", "f.png"], "--png does not apply with --html"),
    (["--html", "x.html", "--input-size", "13", "--kernel-size", "2"],
     "the explorer draws inputs of up to 12"),
    (["--html", "x.html", "--input-size", "4,4,4", "--kernel-size", "3,3,3"],
     "--input-size 4,4,4 has 3 sizes"),
    (["--input-size", "4", "--kernel-size", "3,3"],
     "--kernel-size 3,3 has 2 sizes but --input-size 4 has 1"),
])
def test_bad_arguments_return_2(argv, message, capsys):
    assert main(["explain", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("convgrad explain: ") and message in err


def test_run_directly(capsys):
    assert run(case="nope") == 2
    assert "unknown case 'nope'" in capsys.readouterr().err
    assert run(input_size=(4,), kernel_size=(2,), stride=1, padding="valid") == 0


@pytest.mark.parametrize("argv, bound, override", [
    (["--input-size", "10,10", "--kernel-size", "3,3", "--padding", "40"],
     "up to 100 entries of x, w and y", "beyond what a symbolic derivation can do"),
    (["--input-size", "10,10", "--kernel-size", "7,7", "--padding", "3"],
     "up to 1000", "--max-terms 4900"),
    (["--input-size", "4", "--kernel-size", "200", "--padding", "100"],
     "readable up to 100", "--max-entries 200"),
])
def test_work_is_estimated_before_it_is_done(argv, bound, override, capsys):
    """The issue's case ran > 120 s: y (and dy) of (88, 88) counted, refused at once."""
    import time
    start = time.perf_counter()
    assert main(["explain", *argv]) == 2
    assert time.perf_counter() - start < 5
    err = capsys.readouterr().err
    assert bound in err and override in err


def test_max_entries_raises_the_bound(capsys):
    assert main(["explain", "--input-size", "11,10", "--kernel-size", "1,1"]) == 2
    assert "--max-entries 110" in capsys.readouterr().err
    assert main(["explain", "--input-size", "11,10", "--kernel-size", "1,1",
                 "--max-entries", "110"]) == 0
    assert "HOLDS" in capsys.readouterr().out


def test_closed_pipe_exits_quietly(tmp_path):
    """`convgrad explain | head -1`: one line, no message, exit status 0."""
    import subprocess
    import sys
    result = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m convgrad.apps.cli explain "
         f"--input-size 8,8 --kernel-size 3,3 | head -1"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("== convgrad explain") and result.stdout.count("\n") == 1
    assert result.stderr == ""


def test_html(tmp_path, capsys):
    path = tmp_path / "e.html"
    assert main(["explain", "--html", str(path), "--input-size", "4", "--kernel-size", "3",
                 "--stride", "2", "--padding", "1", "--transposed", "--output-padding", "1",
                 "--numeric"]) == 0
    assert f"explorer written to {path}" in capsys.readouterr().out
    text = path.read_text()
    assert '"transposed": true' in text and '"mode": "numbers"' in text
    assert main(["explain", "--case", "stride2", "--html", str(path)]) == 0
    assert '"x": [5]' in path.read_text()


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
    ("sympy", ["explain", "--latex-document"], "sympy"),
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


def test_png_legend_padding_and_window(tmp_path):
    fig = draw_case(derive((5,), (3,), stride=2, padding=1), tmp_path / "c.png")
    texts = [t.get_text() for t in fig.texts]
    assert any(t.startswith("\u2605 = cross-correlation") for t in texts)     # the legend
    assert any("insert 1 zero between" in t for t in texts)                  # grammar
    assert any("zero-padded by 1" in t for t in texts)                       # amounts
    assert any("pad by ((1, 2),)" in t or "pad by 1" in t for t in texts)
    red = [p for ax in fig.axes for p in ax.patches
           if p.get_edgecolor()[:3] == (0.7529411764705882, 0.2235294117647059,
                                        0.16862745098039217)]
    assert len(red) == 3 + 3 + 1          # the window of dy, rot180(w), the dx entry
    fig = draw_case(derive((7,), (3,), stride=3), tmp_path / "d.png")
    assert any("insert 2 zeros between" in t for t in (t.get_text() for t in fig.texts))


def test_html_needs_no_sympy(tmp_path):
    import subprocess
    import sys
    argv = ["explain", "--html", "e.html"]
    code = ("import sys; sys.modules['sympy'] = None; sys.modules['matplotlib'] = None; "
            f"from convgrad.apps.cli import main; sys.exit(main({argv!r}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "e.html").read_text().startswith("<!DOCTYPE html>")


def test_wide_jacobians_are_summarized(capsys):
    assert main(["explain", "--input-size", "6,5", "--kernel-size", "2,2"]) == 0
    out = capsys.readouterr().out
    assert "20 x 30, too wide to print" in out and "HOLDS" in out


def test_bounds_cannot_be_raised_beyond_a_minute_of_sympy(capsys):
    """--padding 4000 must not suggest --max-entries 64128064: the override has a ceiling."""
    assert main(["explain", "--input-size", "10,10", "--kernel-size", "3,3",
                 "--padding", "4000"]) == 2
    err = capsys.readouterr().err
    assert "--max-entries 64128064" not in err and "beyond what a symbolic derivation" in err
    with pytest.raises(SystemExit):
        main(["explain", "--max-terms", "99999999"])
    assert "from 1 to 25000" in capsys.readouterr().err
