"""A loss that becomes NaN or inf stops training at once, with a clear message and a
non-zero exit from `convgrad train`, and the last good model in the folder is kept."""
import math
import os
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from convgrad.apps import cli, digits  # noqa: E402


def last_good_run(folder):
    """A folder holding what an earlier, successful run wrote (its bytes are the proof)."""
    folder.mkdir()
    (folder / "model.npz").write_bytes(b"PK\x05\x06 the last good model")
    (folder / "metrics.json").write_text('{"test_accuracy": 0.98}\n')
    return {name: (folder / name).read_bytes() for name in os.listdir(folder)}


def assert_untouched(folder, files):
    assert sorted(os.listdir(folder)) == sorted(files)          # no new or temporary files
    for name, content in files.items():
        assert (folder / name).read_bytes() == content, name


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_nan_loss_stops_training_and_keeps_the_last_good_model(tmp_path, optimizer):
    out = tmp_path / "run"
    files = last_good_run(out)
    lines = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # and no NumPy warnings
        with pytest.raises(digits.TrainingDivergedError,
                           match=r"the loss became nan at step 2 of 129 \(epoch 1 of 3\).*"
                                 r"nothing was written.*smaller learning rate than lr=1e\+38"):
            digits.train(out, epochs=3, lr=1e38, optimizer=optimizer, progress=False,
                         echo=lines.append)
    assert_untouched(out, files)
    assert not any("test accuracy" in line for line in lines)


def test_a_nan_held_out_loss_stops_training_too(tmp_path, monkeypatch):
    """The last step can break the model with a finite training loss: the held-out loss
    after each epoch is checked as well (BatchNorm's running variance overflowing, say)."""
    data = digits.load_data(0, np.float32)
    small = dict(data, x_train=data["x_train"][:64], y_train=data["y_train"][:64])
    monkeypatch.setattr(digits, "load_data", lambda seed, dtype: small)
    evaluate = digits._evaluate

    def broken_after_training(model, loss_fn, x, y):
        loss, accuracy, predicted = evaluate(model, loss_fn, x, y)
        model[-1].weight.data[...] = np.inf                  # what one bad step can do
        return evaluate(model, loss_fn, x, y)
    monkeypatch.setattr(digits, "_evaluate", broken_after_training)
    out = tmp_path / "run"
    files = last_good_run(out)
    with pytest.raises(digits.TrainingDivergedError,
                       match=r"the loss became (nan|inf) on the held-out digits after epoch 1"):
        digits.train(out, epochs=2, progress=False, echo=lambda line: None)
    assert_untouched(out, files)


def test_cli_train_exits_nonzero_with_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    files = last_good_run(out)
    status = cli.main(["train", "--out", str(out), "--lr", "1e38", "--optimizer", "sgd",
                       "--epochs", "2"])
    err = capsys.readouterr().err
    assert status != 0
    assert "Traceback" not in err and "RuntimeWarning" not in err
    message = [line for line in err.splitlines() if line.startswith("convgrad train:")]
    assert len(message) == 1 and "training diverged: the loss became nan" in message[0]
    assert_untouched(out, files)


def test_a_good_lr_is_not_stopped(tmp_path, monkeypatch):
    """The check is on the loss only: an ordinary short run goes through and writes."""
    data = digits.load_data(0, np.float32)
    small = dict(data, x_train=data["x_train"][:64], y_train=data["y_train"][:64])
    monkeypatch.setattr(digits, "load_data", lambda seed, dtype: small)
    monkeypatch.setattr(digits, "_write_outputs", lambda out, model, metrics, data: metrics)
    metrics = digits.train(tmp_path, epochs=1, progress=False, echo=lambda line: None)
    assert all(math.isfinite(v) for v in metrics["epoch_train_loss"])
