"""`convgrad bench`: honest measurement and a CLI that refuses what does not apply.

No timing is asserted (speed is a benchmark, never a test): these tests check that the
benchmark measures what it says (the same numbers in both libraries, the spread, the load
warning) and that bad options are refused before any work.
"""
from __future__ import annotations

import numpy as np
import pytest

from convgrad.apps import bench, bench_train, timing
from convgrad.apps.cli import main

torch = pytest.importorskip("torch")


def _run(capsys, *argv):
    status = main(["bench", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_help_describes_every_workload_with_its_shapes(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    text = capsys.readouterr().out
    for workload in bench.WORKLOADS + bench.SMALL:
        assert f"{workload.name} {workload.note}: x {workload.x_shape}, w {workload.w_shape}" \
            in text
    assert "issue" not in text
    assert "digits: x (N, 1, 8, 8)" in text and "cifar:  x (N, 3, 32, 32)" in text


@pytest.mark.parametrize("argv,message", [
    (["--x", "2,3,8,8", "--w", "4,3,3,3", "--workloads", "W2"], "either --workloads or"),
    (["--train", "--workloads", "W2"], "--workloads does not apply to --train"),
    (["--train", "--memory"], "--memory does not apply to --train"),
    (["--train", "--engine", "reference"], "--engine does not apply to --train"),
    (["--stride", "2"], "--stride applies to your own shapes only"),
    (["--workloads", "W3", "--groups", "2"], "--groups applies to your own shapes only"),
    (["--models", "digits"], "--models applies only to --train"),
    (["--batches", "8"], "--batches applies only to --train"),
    (["--train", "--models", "resnet"], "unknown model 'resnet'"),
    (["--workloads", "W9"], "unknown workload 'W9'"),
])
def test_options_that_do_not_apply_are_refused_before_any_work(capsys, monkeypatch, argv,
                                                               message):
    monkeypatch.setattr(bench, "run", lambda *a, **k: pytest.fail("bench ran"))
    monkeypatch.setattr(bench_train, "run", lambda *a, **k: pytest.fail("bench ran"))
    status, _, err = _run(capsys, *argv)
    assert status == 2 and message in err and "Traceback" not in err


@pytest.mark.parametrize("option", ["--json", "--plot"])
def test_an_unwritable_output_file_fails_before_running(capsys, monkeypatch, option):
    monkeypatch.setattr(bench, "run", lambda *a, **k: pytest.fail("bench ran"))
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", option, "/proc/x"])
    assert exit_info.value.code == 2
    assert "cannot write '/proc/x'" in capsys.readouterr().err


def test_a_writable_output_file_is_not_left_behind_by_the_check(tmp_path):
    from convgrad.apps.commands.bench import writable_file
    path = tmp_path / "out.json"
    assert writable_file(str(path)) == str(path) and not path.exists()


def test_no_torch_never_says_pytorch_is_missing(capsys):
    status, out, err = _run(capsys, "--x", "2,3,6,6", "--w", "4,3,3,3", "--no-torch",
                            "--repeats", "1", "--quiet", "--dtype", "float64")
    assert status == 0
    assert "not installed" not in out + err and "PyTorch not compared (--no-torch)" in out


def test_convolution_figures_have_a_spread_and_name_the_machine(capsys, tmp_path):
    path = tmp_path / "bench.json"
    status, out, _ = _run(capsys, "--x", "2,3,6,6", "--w", "4,3,3,3", "--padding", "1",
                          "--repeats", "2", "--quiet", "--dtype", "float32", "--threads",
                          "2", "--clock", "wall", "--json", str(path))
    assert status == 0
    assert "ms (" in out and "x (" in out                    # median (min-max)
    assert "CPU: " in out and "BLAS " in out and "2 thread(s)" in out
    assert "wall-clock time" in out
    import json
    record = json.loads(path.read_text())
    seconds = record["results"][0]["seconds"]
    assert seconds["min"] <= seconds["median"] <= seconds["max"]
    assert record["environment"]["threads"] == 2 and record["environment"]["clock"] == "wall"


def test_plot_of_one_workload_labels_its_value_and_shows_its_spread():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt
    spread = timing.Spread(1.25, 1.1, 1.6)
    fig = bench.figure(["W2\nfloat32\nfast"], [spread], True, ["float32"], "title")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["1.25x"]
    whiskers = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    segments = whiskers[0].lines[2][0].get_segments()
    np.testing.assert_allclose(segments[0][:, 1], [1.1, 1.6])
    plt.close(fig)


def test_the_load_warning_appears_when_the_load_exceeds_the_cores(monkeypatch):
    monkeypatch.setattr("os.getloadavg", lambda: (99.0, 99.0, 99.0))
    with timing.Session("cpu", 1) as session:
        session.pairs(lambda: None, None, 1)
    report = session.report()
    assert report["load_average_max"] == 99.0 and "load average reached 99.0" in \
        report["load_warning"]


@pytest.mark.parametrize("model", bench_train.MODELS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_step_numerics_match_torch_nn(model, dtype):
    """The same weights and data give the same losses in both libraries, steps apart."""
    torch.set_num_threads(1)
    pair = bench_train.build_pair(torch, model, 6, dtype)
    difference = bench_train.check_numerics(pair, steps=3)
    assert difference <= (1e-4 if dtype == "float32" else 1e-9)


def test_a_torch_twin_that_computes_something_else_is_caught():
    pair = bench_train.build_pair(torch, "digits", 6, "float64")
    with torch.no_grad():
        next(pair.theirs.parameters()).mul_(1.5)
    with pytest.raises(RuntimeError, match="differ from torch.nn's"):
        bench_train.check_numerics(pair)


def test_bench_train_runs_and_reports(capsys):
    status, out, _ = _run(capsys, "--train", "--models", "digits", "--batches", "4",
                          "--repeats", "1", "--quiet")
    assert status == 0
    assert "| digits | 4" in out and "loss diff" in out and "Geometric mean" in out


def test_progress_in_a_log_is_plain_lines_not_carriage_returns(capsys):
    """stderr not a terminal (a log, a pipe): one plain line per job, no tqdm redraws."""
    status, _, err = _run(capsys, "--x", "2,3,6,6", "--w", "4,3,3,3", "--no-torch",
                          "--repeats", "1", "--dtype", "both")
    assert status == 0
    assert "\r" not in err
    assert "[1/2]" in err and "[2/2]" in err


def test_no_memory_ratio_when_pytorch_grew_nothing(monkeypatch):
    """A probe that finds PyTorch's peak unchanged (0 B) gives no ratio ('-'), not
    convgrad's bytes over 1 byte."""
    monkeypatch.setattr(bench, "memory_probe",
                        lambda library, *a, **k: 4096 if library == "convgrad" else 0)
    results, env = bench.run(["S3"], dtypes=("float64",), repeats=1, memory=True,
                             progress=False, gemm_size=64)
    assert results[0].memory_bytes == 4096 and results[0].torch_memory_bytes == 0
    assert results[0].memory_ratio is None
    row = [line for line in bench.format_table(results, env).splitlines() if "S3" in line][0]
    assert [cell.strip() for cell in row.split("|")][-2] == "-"


@pytest.mark.parametrize("argv,fragment", [
    (["--workloads", "W4", "--engine", "winograd7", "--dtype", "float32"],
     "W4 float32 winograd7: winograd7 computes in float64 only"),
    (["--workloads", "W6", "--engine", "winograd4"],
     "W6 float32 winograd4: winograd4 applies to 2-D 3x3 stride-1 convolutions only"),
])
def test_an_engine_that_applies_to_nothing_is_refused(capsys, argv, fragment):
    """Asking for an engine none of the workloads can use is an error (exit 2), not an
    empty table."""
    status, out, err = _run(capsys, *argv, "--repeats", "1", "--no-torch")
    assert status == 2 and "nothing to time" in err and fragment in err and "|" not in out


def test_combinations_not_timed_are_named(capsys):
    status, out, err = _run(capsys, "--x", "2,3,6,6", "--w", "4,3,2,2", "--engine", "all",
                            "--repeats", "1", "--no-torch", "--quiet", "--dtype", "float64")
    assert status == 0
    assert "not timed: custom float64 winograd: winograd applies to 2-D 3x3" in err
    assert "| custom" in out and "fast" in out
