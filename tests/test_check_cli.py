"""`convgrad check`: one line per case in the course's style, exit 1 on any failure."""
import re

import numpy as np

import convgrad.functional as functional
from convgrad.apps.cli import main

LINE = re.compile(r"dx error: \d\.\de-\d\d  dw error: \d\.\de-\d\d  db error: \d\.\de-\d\d  ok")


def test_grid_passes(capsys):
    assert main(["check", "--algorithm", "fast"]) == 0
    out = capsys.readouterr().out
    assert len(LINE.findall(out)) >= 15
    assert "all passed" in out


def test_single_user_geometry(capsys):
    code = main(["check", "--x", "2,3,7,7", "--w", "4,3,3,3", "--stride", "2",
                 "--padding", "same", "--algorithm", "reference"])
    assert code == 0
    out = capsys.readouterr().out
    assert len(LINE.findall(out)) == 1 and "1 gradient check (" in out


def test_asymmetric_padding_and_transposed(capsys):
    assert main(["check", "--x", "1,2,4,5", "--w", "2,3,3,2", "--stride", "2",
                 "--padding", "1:0,0:1", "--transposed", "--output-padding", "1"]) == 0


def test_bad_geometry_is_reported(capsys):
    assert main(["check", "--x", "2,3,7,7", "--w", "4,2,3,3"]) == 2
    assert "C=3 channels" in capsys.readouterr().err


def test_a_wrong_backward_fails_with_exit_1(monkeypatch, capsys):
    original = functional.conv2d_backward

    def wrong(*args, **kwargs):
        dx, dw, db = original(*args, **kwargs)
        return dx, dw * 1.001, db

    monkeypatch.setattr(functional, "conv2d_backward", wrong)
    assert main(["check", "--x", "2,3,5,5", "--w", "2,3,3,3"]) == 1
    assert "FAIL" in capsys.readouterr().out
