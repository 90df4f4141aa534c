"""The digits job's training loop: a small CNN, built from convgrad.nn, learns
scikit-learn's 8x8 digits (the data and the network: :mod:`.digits_data`).

    convgrad train --epochs 20 --optimizer sgd       # this module
    convgrad demo                                    # .digits_demo: gradient check, then this
    convgrad predict --model convgrad-train/model.npz [--image my_digit.png]   # .digits_predict

Softmax cross-entropy, mini-batches of 32 and Adam (lr 0.003; or SGD with momentum 0.9,
lr 0.05), the learning rate decayed to zero along a cosine over the run. One seed fixes
the split, the initial weights and the batch order: the same seed gives the same model.
The outputs: ``model.npz`` (with the metadata ``predict`` needs), ``metrics.json`` and the
figures of :mod:`.digits_figures`.

Optional dependencies (the ``demo`` extra): scikit-learn, matplotlib, Pillow; tqdm for a
progress bar on a terminal. Each is imported only inside the function that needs it.
"""
from __future__ import annotations

import json
import math
import os
import secrets
import sys
import tempfile
import time

import numpy as np

from .. import nn
from ..geometry import positive_int
from .digits_data import (ARCHITECTURE, FORMAT, FORMAT_VERSION, MAX_SEED, PIXEL_MAX,
                          TEST_FRACTION, build_model, load_data, require_extras)

__all__ = ["train", "check_out_dir", "TrainingDivergedError", "DEFAULT_LR", "MAX_EPOCHS"]

DEFAULT_LR = {"sgd": 0.05, "adam": 0.003}
SGD_MOMENTUM = 0.9
DTYPES = ("float32", "float64")
MAX_EPOCHS = 1000           # the command line's bound (about 6 minutes at 0.35 s an epoch;
                            # accuracy levels off after about 10)


def _check_options(epochs, batch_size, lr, optimizer, seed, dtype):
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        positive_int(value, name)
    if optimizer not in DEFAULT_LR:
        raise ValueError(f"optimizer={optimizer!r}; expected 'sgd' or 'adam'")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if (not isinstance(seed, (int, np.integer)) or isinstance(seed, bool)
            or not 0 <= seed <= MAX_SEED):
        raise ValueError(f"seed must be a non-negative int up to 2**32 - 1, got {seed!r}")
    try:
        name = dtype if isinstance(dtype, str) else np.dtype(dtype).name
    except TypeError:
        name = None
    if name not in DTYPES:
        raise ValueError(f"dtype={dtype!r}; expected 'float32' or 'float64'")
    return float(lr), name


class TrainingDivergedError(ValueError):
    """The loss became NaN or infinite: training stopped before anything was written."""


def _check_finite(loss: float, where: str, lr: float, bar) -> None:
    """Stop training on a NaN or infinite loss, with what happened and what to try."""
    if math.isfinite(loss):
        return
    if bar is not None:
        bar.close()
    raise TrainingDivergedError(
        f"training diverged: the loss became {loss} {where}; training stopped and nothing "
        f"was written (a model already in the output folder is kept as it was); try a "
        f"smaller learning rate than lr={lr:g}")


def check_out_dir(out_dir) -> str:
    """The output folder, checked before any work: it may exist (as a folder) or not (then
    its nearest existing parent must be a folder). Whether it can be written is probed, not
    guessed from permissions (root passes every os.access check, and /proc refuses new
    folders): the missing folders are created, a file is written into the folder, and
    what the probe made is removed again. Raises ValueError saying what is wrong."""
    path = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"the output folder {os.fspath(out_dir)!r} is an existing file, "
                         f"not a folder: give a folder (created if missing)")
    missing, parent = [], path
    while not os.path.exists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ValueError(f"cannot create the output folder {os.fspath(out_dir)!r}: "
                         f"{parent!r} is a file, not a folder")
    created = []
    try:
        for folder in reversed(missing):
            os.mkdir(folder)
            created.append(folder)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as error:
        what = "create" if missing else "write into"
        raise ValueError(f"cannot {what} the output folder {os.fspath(out_dir)!r}: "
                         f"{error.strerror or error}") from None
    finally:
        for folder in reversed(created):
            os.rmdir(folder)
    return path


class _EpochLine:
    """One epoch's progress as a plain line, printed when the epoch ends (no per-batch
    output): the fallback for a log or a pipe, where a bar would be one very long line.
    It takes tqdm's calls (set_postfix, update, close), so the loop treats both alike."""

    def __init__(self, epoch: int, epochs: int, echo):
        self.epoch, self.epochs, self.echo, self.postfix = epoch, epochs, echo, {}

    def set_postfix(self, refresh=True, **values):
        self.postfix = values

    def update(self, n=1):
        pass

    def close(self):
        p = self.postfix
        if "loss" not in p:                  # stopped before the first batch ended
            return
        self.echo(f"epoch {self.epoch + 1:>2}/{self.epochs}  loss {p.get('loss')}  "
                  f"acc {p.get('acc')}" + (f"  test acc {p['test_acc']}" if "test_acc" in p
                                           else ""))


def _progress(progress, epoch: int, epochs: int, batches: int, echo):
    """The progress display for one epoch: a tqdm bar (on stderr) when ``progress`` is
    True, stderr is a terminal and tqdm is installed; else a plain line at the end of the
    epoch, for at most about 12 epochs of the run (the first, the last and evenly between);
    None (nothing) when ``progress`` is None."""
    if progress is None:
        return None
    if progress and getattr(sys.stderr, "isatty", lambda: False)():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=batches, desc=f"epoch {epoch + 1:>2}/{epochs}", unit="batch",
                        leave=True, dynamic_ncols=True)
    every = math.ceil(epochs / 12)
    if epoch == 0 or epoch == epochs - 1 or (epoch + 1) % every == 0:
        return _EpochLine(epoch, epochs, echo)
    return None


def _evaluate(model, loss_fn, x, y, batch_size: int = 512) -> tuple[float, float, np.ndarray]:
    """(mean loss, accuracy, predicted classes) of ``model`` in eval mode."""
    model.eval()
    logits = np.concatenate([model.forward(x[i:i + batch_size])
                             for i in range(0, len(x), batch_size)])   # (N, classes)
    loss = loss_fn.forward(logits, y)
    predicted = logits.argmax(axis=1)
    return loss, float((predicted == y).mean()), predicted


@np.errstate(over="ignore", invalid="ignore", divide="ignore")   # the loss is checked
def _fit(data, *, epochs, batch_size, lr, optimizer, seed, dtype, progress, echo,
         gradients=None):
    """The training loop; returns (model, metrics). A NaN or infinite loss (training or
    held-out) raises :class:`TrainingDivergedError` at once."""
    init_seed, order_seed = np.random.SeedSequence(seed).spawn(2)
    model = build_model(ARCHITECTURE, dtype=dtype, rng=np.random.default_rng(init_seed))
    order = np.random.default_rng(order_seed)
    params = model.parameters()
    opt = (nn.Adam(params, lr=lr) if optimizer == "adam"
           else nn.SGD(params, lr=lr, momentum=SGD_MOMENTUM))
    loss_fn = nn.CrossEntropyLoss()
    step_gradients = None if gradients is None else gradients(model, loss_fn)
    x, y = data["x_train"], data["y_train"]
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total_steps, step = epochs * steps_per_epoch, 0
    history = {key: [] for key in ("epoch_train_loss", "epoch_train_accuracy",
                                   "epoch_test_loss", "epoch_test_accuracy")}
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        shuffled = order.permutation(len(x))
        batches = [shuffled[i:i + batch_size] for i in range(0, len(x), batch_size)]
        bar = _progress(progress, epoch, epochs, len(batches), echo)    # None: silent
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in batches:
            opt.lr = lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))   # cosine decay
            step += 1
            opt.zero_grad()
            if step_gradients is None:
                logits = model.forward(x[batch])                               # (B, 10)
                loss = loss_fn.forward(logits, y[batch])
            else:          # e.g. on Dask workers: the same loss; gradients added to .grad
                loss, logits = step_gradients(x[batch], y[batch])
            _check_finite(loss, f"at step {step} of {total_steps} (epoch {epoch + 1} of "
                          f"{epochs})", lr, bar)
            if step_gradients is None:            # the images need no gradient
                model.backward(loss_fn.backward(), input_grad=False)
            opt.step()
            loss_sum += loss * len(batch)
            correct += int((logits.argmax(axis=1) == y[batch]).sum())
            seen += len(batch)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}",
                                refresh=False)
                bar.update(1)
        test_loss, test_accuracy, _ = _evaluate(model, loss_fn, data["x_test"], data["y_test"])
        _check_finite(test_loss, f"on the held-out digits after epoch {epoch + 1}", lr, bar)
        history["epoch_train_loss"].append(loss_sum / seen)
        history["epoch_train_accuracy"].append(correct / seen)
        history["epoch_test_loss"].append(test_loss)
        history["epoch_test_accuracy"].append(test_accuracy)
        if bar is not None:
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}",
                            test_acc=f"{test_accuracy:.3f}")
            bar.close()
    train_seconds = time.perf_counter() - start
    metrics = dict(
        test_accuracy=history["epoch_test_accuracy"][-1],
        test_loss=history["epoch_test_loss"][-1],
        train_accuracy=history["epoch_train_accuracy"][-1],
        train_seconds=round(train_seconds, 3),
        **history,
        epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
        lr_schedule="cosine decay to 0 over all steps",
        momentum=SGD_MOMENTUM if optimizer == "sgd" else None,
        seed=seed, dtype=dtype, n_train=int(len(x)), n_test=int(len(data["x_test"])),
        test_fraction=TEST_FRACTION, architecture=repr(model),
        architecture_config=ARCHITECTURE, num_parameters=model.num_parameters(),
        numpy_version=np.__version__)
    return model, metrics


def _write_outputs(out_dir, model, metrics, data) -> dict:
    """model.npz (with metadata), the figures and metrics.json, into out_dir."""
    from .digits_figures import write_figures
    model_path = os.path.join(out_dir, "model.npz")
    nn.save(model, model_path, metadata=dict(
        format=FORMAT, version=FORMAT_VERSION, architecture=ARCHITECTURE,
        dtype=metrics["dtype"], split=dict(seed=metrics["seed"], test_fraction=TEST_FRACTION),
        pixel_max=PIXEL_MAX, test_accuracy=metrics["test_accuracy"]))
    model.eval()
    probabilities = nn.softmax(model.forward(data["x_test"]), axis=1)   # (N_test, 10)
    figures = write_figures(out_dir, metrics, first_layer=model[0].weight.data,
                            images=data["x_test"][:, 0], labels=data["y_test"],
                            probabilities=probabilities)
    metrics = dict(metrics, model="model.npz", figures=sorted(figures))
    _write_json(os.path.join(out_dir, "metrics.json"), metrics)
    return metrics


def _write_json(path: str, value) -> None:
    """Write JSON atomically: a temporary file beside ``path``, then os.replace.

    The file is created with mode 0o666 less the umask, like the other outputs (a
    tempfile.mkstemp file would be private, 0o600)."""
    temporary = os.path.join(os.path.dirname(os.path.abspath(path)),
                             f".{os.path.basename(path)}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(value, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def train(out_dir, *, epochs=12, batch_size=32, lr=None, optimizer="adam", seed=0,
          dtype="float32", progress=True, echo=print, extra_metrics=None,
          gradients=None) -> dict:
    """Train the digits CNN and write model.npz, metrics.json and figures into ``out_dir``.

    Args:
        out_dir: output folder (created if needed).
        epochs, batch_size: positive ints.
        lr: the initial learning rate (cosine-decayed to 0); None: 0.003 for Adam, 0.05
            for SGD (momentum 0.9).
        optimizer: 'adam' or 'sgd'.
        seed: fixes the split, the initial weights and the batch order.
        dtype: 'float32' or 'float64', for the data and the parameters.
        progress: True: a tqdm bar per epoch on a terminal, else one plain line per
            epoch (at most about 12 lines); False: the plain lines; None: nothing.
        echo: where to print (a function taking a string).
        extra_metrics: a dict merged into the metrics (the demo adds its gradient check).
        gradients: None (each step's forward and backward run here), or a function
            ``gradients(model, loss_fn)`` returning ``step(x, labels) -> (loss, logits)``
            that adds the batch's gradients into the parameters' ``.grad``, e.g.
            ``functools.partial(convgrad.dask.DataParallel, client=client)``.

    Returns the metrics dict also written to metrics.json. Raises
    :class:`TrainingDivergedError` (a ValueError) as soon as a training or held-out loss is
    NaN or infinite; nothing is written then, so an earlier model in ``out_dir`` is kept.
    """
    lr, dtype = _check_options(epochs, batch_size, lr, optimizer, seed, dtype)
    check_out_dir(out_dir)
    require_extras("convgrad train", figures=True)
    os.makedirs(out_dir, exist_ok=True)
    data = load_data(seed, dtype)
    model, metrics = _fit(data, epochs=epochs, batch_size=batch_size, lr=lr,
                          optimizer=optimizer, seed=seed, dtype=dtype, progress=progress,
                          echo=echo, gradients=gradients)
    metrics = _write_outputs(out_dir, model, dict(metrics, **(extra_metrics or {})), data)
    n_test = metrics["n_test"]
    echo(f"test accuracy {metrics['test_accuracy']:.2%} "
         f"({round(metrics['test_accuracy'] * n_test)} of {n_test} held-out digits) after "
         f"{epochs} epoch{'s' if epochs != 1 else ''}, {metrics['train_seconds']:.1f} s of "
         f"training")
    return metrics
