"""`convgrad check` made honest at real sizes: directional above a size, an estimate up
front and a bound, a progress bar on long work, the verdict decided by the printed number
against the tolerance asked for, and options that do not apply refused."""
import io
import re

import numpy as np
import pytest

from convgrad.apps import gradient_check
from convgrad.apps.cli import main
from convgrad.apps.gradient_check import CASES, Case, plan, run_check

LINE = re.compile(r"(dx|dw|db) error: (\d\.\de[+-]\d\d|  n/a  )")


def _lines(out):
    """(the printed errors, the verdict) of every result line."""
    found = []
    for line in out.splitlines():
        if line.endswith((" ok", " FAIL")) and "error:" in line:
            errors = [float(v) for _, v in LINE.findall(line) if "n/a" not in v]
            found.append((errors, line.endswith(" ok")))
    return found


@pytest.mark.parametrize("tolerance", ["0", "1e-10", "3e-11"])
def test_the_verdict_is_the_printed_error_against_the_tolerance(tolerance, capsys):
    code = main(["check", "--algorithm", "fast", "--tolerance", tolerance])
    lines = _lines(capsys.readouterr().out)
    assert len(lines) == len(CASES)
    for errors, ok in lines:
        assert ok == all(e <= float(tolerance) for e in errors)
    assert code == (0 if all(ok for _, ok in lines) else 1)
    if tolerance == "0":
        assert code == 1                   # central differences are never exact here


def test_a_wrong_gradient_fails_at_the_default_tolerance(monkeypatch, capsys):
    original = gradient_check.functional.conv2d_backward

    def wrong(*args, **kwargs):
        dx, dw, db = original(*args, **kwargs)
        return dx, dw * (1 + 1e-5), db

    monkeypatch.setattr(gradient_check.functional, "conv2d_backward", wrong)
    assert main(["check", "--x", "2,3,5,5", "--w", "2,3,3,3", "--algorithm", "fast"]) == 1
    (errors, ok), = _lines(capsys.readouterr().out)
    assert not ok and errors[1] > 1e-6 >= max(errors[0], errors[2])


def test_directional_mode_above_a_size_and_on_request(capsys):
    assert main(["check", "--x", "2,8,20,20", "--w", "4,8,3,3", "--stride", "2",
                 "--algorithm", "fast"]) == 0
    captured = capsys.readouterr()
    assert "[directional]" in captured.out and "random directions" in captured.out
    assert "(1 directional)" in captured.err
    assert main(["check", "--x", "2,3,6,6", "--w", "4,3,3,3", "--mode", "directional",
                 "--algorithm", "reference"]) == 0
    assert "[directional]" in capsys.readouterr().out
    assert [p.mode for p in plan(CASES[:2], ("fast",))] == ["elementwise"] * 2


def test_custom_lines_show_stride_and_padding(capsys):
    assert main(["check", "--x", "2,3,7,7", "--w", "4,3,3,3", "--stride", "2",
                 "--padding", "same", "--algorithm", "fast"]) == 0
    out = capsys.readouterr().out
    assert "x 2,3,7,7, w 4,3,3,3, stride 2, padding same" in out


def test_an_estimate_up_front_and_a_refusal_beyond_the_bound(capsys):
    assert main(["check", "--x", "200,64,64,64", "--w", "64,64,3,3"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"check: 2 gradient checks, [\d,]+ forward calls \(2 directional\), "
                     r"estimated \d+ (min|h)", err)
    assert "over the bound of 300 s" in err and "--budget" in err
    assert "--algorithm fast" in err and "Traceback" not in err
    # two million forward calls of 2.7e8 multiply-adds each: far over any bound
    assert main(["check", "--x", "32,32,32,32", "--w", "32,32,3,3", "--algorithm", "fast",
                 "--mode", "elementwise", "--budget", "60"]) == 2
    err = capsys.readouterr().err
    assert "over the bound of 60 s" in err and "--mode directional" in err


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_progress_bar_on_long_work(monkeypatch, capsys):
    monkeypatch.setitem(gradient_check._CALIBRATION, "fast", (0.01, 0.0))   # 'slow' calls
    terminal = _Terminal()
    assert run_check(CASES[:2], ("fast",), budget=1e9, stream=terminal)
    assert "\rcheck [" in terminal.getvalue() and "%" in terminal.getvalue()
    quiet = _Terminal()
    monkeypatch.setitem(gradient_check._CALIBRATION, "fast", (0.0, 0.0))    # quick work
    assert run_check(CASES[:1], ("fast",), stream=quiet)
    assert "\r" not in quiet.getvalue() and "estimated" in quiet.getvalue()


@pytest.mark.parametrize("argv,fragment", [
    (["check", "--x", "2,3,7,7,7,7", "--w", "4,3,3,3,3,3"], "takes 3 to 5"),
    (["check", "--x", "2,3,7,7", "--w", "4,3,3"], "same number of axes"),
    (["check", "--stride", "2"], "--stride applies to your own geometry"),
    (["check", "--padding", "same"], "--padding applies"),
    (["check", "--transposed"], "--transposed applies"),
    (["check", "--no-bias"], "--no-bias applies"),
    (["check", "--tolerance", "-1"], "or 0 for exact agreement"),
    (["check", "--budget", "0"], "positive number of seconds"),
    (["grade", "x.py", "--timeout", "nan"], "positive number of seconds"),
])
def test_bad_check_options_are_one_line_messages(argv, fragment, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err


def test_the_case_geometry_is_validated_without_allocating():
    case = Case("huge", (10**6, 64, 512, 512), (64, 64, 3, 3), dict(padding=1))
    g = case.geometry()                        # 1.3e14 entries: shapes only
    assert g.out_size == (512, 512)
    assert np.isfinite(plan([case], ("fast",))[0].seconds)


def test_a_noisy_calibration_never_makes_big_work_look_free(monkeypatch):
    """On a busy machine the small calibration run may time slower than the large one;
    the estimate must still grow with the work (else a huge check would start)."""
    import time
    real = gradient_check.functional.conv2d

    def noisy(x, w, *args, **kwargs):
        if x.size < 100:
            time.sleep(0.02)                       # the small run, delayed by other work
        return real(x, w, *args, **kwargs)

    monkeypatch.setattr(gradient_check.functional, "conv2d", noisy)
    monkeypatch.setattr(gradient_check, "_CALIBRATION", {})
    for algorithm in ("fast", "reference"):
        assert gradient_check._seconds_per_call(algorithm)[1] > 0
    huge = Case("huge", (200, 64, 64, 64), (64, 64, 3, 3))
    assert plan([huge], ("reference",))[0].seconds > 300
