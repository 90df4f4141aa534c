"""Bad command-line input: a one-line message and exit status 2, never a traceback."""
import pytest

from convgrad.apps.cli import main


@pytest.mark.parametrize("argv,fragment", [
    (["check", "--x", "2,3,5,5"], "--w is missing"),
    (["check", "--output-padding", "1", "--x", "1,1,4,4", "--w", "1,1,2,2"], "add --transposed"),
    (["check", "--x", "2,3,7,7", "--w", "4,2,3,3"], "C=3 channels"),
    (["check", "--tolerance", "nan"], "expected a positive number"),
    (["bench", "--repeats", "0"], "expected a positive integer"),
    (["bench", "--json", "/no/such/folder/out.json"], "does not exist"),
    (["bench", "--plot", "/no/such/folder/out.png"], "does not exist"),
    (["bench", "--workloads", "W9"], "unknown workload 'W9'"),
    (["demo", "--seed", "-1"], "expected an integer from 0 to 4294967295"),
    (["train", "--epochs", "0"], "expected an integer from 1 to 1000"),
    (["predict", "--model", "/no/such/model.npz"], "does not exist"),
    (["explain", "--input-size", "4"], "give both"),
])
def test_bad_options_exit_2_with_a_message(argv, fragment, capsys):
    try:
        code = main(argv)
    except SystemExit as exit_:            # argparse's own errors
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


def test_unwritable_output_folder(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--out", str(blocker / "sub"), "--epochs", "1"])
    assert exit_.value.code == 2
    assert "'" + str(blocker) + "' is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("extra,fragment", [
    (["--stride", "0"], "conv2d: stride must be a positive int"),     # was timed as stride 1
    (["--stride", "-1"], "conv2d: stride must be a positive int"),
    (["--padding", "99999"], "conv2d: y (and dy) of shape (2, 4, 200004, 200004) would need"),
    (["--groups", "2"], "groups=2 must divide"),
])
def test_bench_checks_your_geometry_before_any_timing(extra, fragment, monkeypatch, capsys):
    """Refused before the benchmark starts (it used to time stride 0 as stride 1, fail
    after the GEMM peak was measured, or leak NumPy's 'Unable to allocate')."""
    from convgrad.apps import bench

    def started(*args, **kwargs):
        raise AssertionError("the benchmark started")
    monkeypatch.setattr(bench, "run", started)
    monkeypatch.setattr(bench, "gemm_peak", started)
    assert main(["bench", "--x", "2,3,8,8", "--w", "4,3,3,3", *extra]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1
    assert "Unable to allocate" not in err and "bench: convgrad bench" not in err


def test_python_dash_m_convgrad_is_the_command():
    """`python -m convgrad` runs the same CLI as the `convgrad` script: version and a
    refused option's exit status 2."""
    import subprocess
    import sys
    import convgrad
    ok = subprocess.run([sys.executable, "-m", "convgrad", "--version"],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.strip() == f"convgrad {convgrad.__version__}"
    bad = subprocess.run([sys.executable, "-m", "convgrad", "bench", "--repeats", "0"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
