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
    (["predict", "--model", __file__, "--image", __file__, "--show", "seen.txt"],
     "must end with .png"),
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


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
@pytest.mark.parametrize("command", ["demo", "train"])
def test_output_folder_that_cannot_be_created_is_refused_before_work(command, capsys):
    """/proc passes a permission check (os.access) but no folder can be made in it: the
    folder is probed by creating it, so the demo never starts its gradient check."""
    with pytest.raises(SystemExit) as stop:
        main([command, "--out", "/proc/convgrad-out", "--epochs", "1"])
    assert stop.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and "cannot create the output folder" in err and "Traceback" not in err


def test_probing_the_output_folder_leaves_nothing_behind(tmp_path):
    from convgrad.apps.digits import check_out_dir
    target = tmp_path / "a" / "b"
    assert check_out_dir(target) == str(target)
    assert not (tmp_path / "a").exists()
    target.mkdir(parents=True)
    check_out_dir(target)
    assert list(target.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match="is an existing file"):
        check_out_dir(tmp_path / "file")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        check_out_dir(tmp_path / "file" / "out")
