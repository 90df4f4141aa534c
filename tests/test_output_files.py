"""Output files are checked before any work: a command that would fail to write says so at once."""
import os

import pytest

from convgrad.apps.cli import main


@pytest.mark.parametrize("argv, message", [
    (["explain", "--png", "x.npz"], "must end with .png"),
    (["explain", "--png", "/proc/nothing.png"], "cannot write"),
    (["explain", "--png", ""], "empty string"),
    (["explain", "--png", "/"], "is a folder"),
    (["explain", "--html", "/proc/x.html"], "cannot write"),
    (["explain", "--html", "page.txt"], "must end with .html"),
    (["explain", "--html", "no/such/folder/x.html"], "does not exist"),
])
def test_bad_output_file_refused_before_work(argv, message, capsys):
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_checking_leaves_no_file_behind(tmp_path, capsys):
    target = tmp_path / "figure.png"
    assert main(["explain", "--png", str(target)]) == 0
    assert target.stat().st_size > 1000             # the real figure was written
    probe = tmp_path / "never.png"
    # refused after parsing (an option that does not apply): the probe left nothing
    assert main(["explain", "--png", str(probe), "--case", "1d", "--stride", "2"]) == 2
    assert not os.path.exists(probe)
