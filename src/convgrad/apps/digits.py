"""The main job: a small CNN, built from convgrad.nn, learns scikit-learn's 8x8 digits.

    convgrad demo                      # gradient check, then train, figures, summary
    convgrad train --epochs 20 --optimizer sgd
    convgrad predict --model convgrad-demo/model.npz [--image my_digit.png]

The data: ``sklearn.datasets.load_digits()``, 1797 grayscale 8x8 images (white digit on
black, integers 0..16, shipped with scikit-learn: no download), scaled to 0..1 and split
75/25, stratified by class, with the seed. The network (21,482 parameters):

    Conv2d(1, 32, 3, padding=1) - BatchNorm2d - ReLU - MaxPool2d(2)     (N, 32, 4, 4)
    Conv2d(32, 64, 3, padding=1) - BatchNorm2d - ReLU - MaxPool2d(2)    (N, 64, 2, 2)
    Flatten - Linear(256, 10)                                           (N, 10) logits

trained with softmax cross-entropy, mini-batches of 32 and Adam (lr 0.003; or SGD with
momentum 0.9, lr 0.05), the learning rate decayed to zero along a cosine over the run.
One seed fixes the split, the initial weights and the batch order: the same seed gives
the same model. The saved ``model.npz`` carries, as JSON metadata, what is needed to
rebuild the network and the split, so ``predict`` needs only that file.

Optional dependencies (the ``demo`` extra): scikit-learn, matplotlib (and its Pillow),
tqdm; each is imported only inside the function that needs it.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import time

import numpy as np

from .. import nn
from .._optional import require
from ..geometry import positive_int
from ..gradcheck import gradcheck

__all__ = ["demo", "train", "predict", "build_model", "load_data", "image_to_digit",
           "conv_gradient_check", "TrainingDivergedError", "ARCHITECTURE", "DEFAULT_LR"]

FORMAT = "convgrad-digits"
FORMAT_VERSION = 1
ARCHITECTURE = {"image_size": 8, "channels": [32, 64], "kernel_size": 3, "batch_norm": True,
                "classes": 10}
DEFAULT_LR = {"sgd": 0.05, "adam": 0.003}
SGD_MOMENTUM = 0.9
TEST_FRACTION = 0.25
PIXEL_MAX = 16.0            # load_digits' pixels are integers 0..16
DTYPES = ("float32", "float64")


# ----------------------------------------------------------------------------------------
# Model and data


def build_model(architecture: dict = ARCHITECTURE, *, dtype=np.float32, rng=None) -> nn.Sequential:
    """The digits CNN: (conv 3x3 'same' - [batch norm] - ReLU - max pool 2) per entry of
    ``architecture['channels']``, then Flatten and Linear to the classes.

    Shape:
        input: (N, 1, S, S), S = architecture['image_size']    output: (N, classes) logits
    """
    size, channels = architecture["image_size"], list(architecture["channels"])
    kernel, classes = architecture["kernel_size"], architecture["classes"]
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    layers, c_in = [], 1
    for c_out in channels:
        if size < 2:
            raise ValueError(f"architecture {architecture}: {len(channels)} pooling steps do "
                             f"not fit an image of size {architecture['image_size']}")
        layers.append(nn.Conv2d(c_in, c_out, kernel, padding="same",
                                bias=not architecture["batch_norm"], dtype=dtype, rng=rng))
        if architecture["batch_norm"]:
            layers.append(nn.BatchNorm2d(c_out, dtype=dtype))
        layers += [nn.ReLU(), nn.MaxPool2d(2)]
        c_in, size = c_out, size // 2
    layers += [nn.Flatten(), nn.Linear(c_in * size * size, classes, dtype=dtype, rng=rng)]
    return nn.Sequential(*layers)


def load_data(seed: int = 0, dtype=np.float32, test_fraction: float = TEST_FRACTION) -> dict:
    """load_digits, scaled to 0..1, split stratified by class with ``seed``.

    Returns a dict with x_train (N, 1, 8, 8), y_train (N,), x_test, y_test, and
    test_index: the positions of the test images in load_digits' order.
    """
    datasets = require("sklearn.datasets", "demo", "convgrad demo")
    selection = require("sklearn.model_selection", "demo", "convgrad demo")
    digits = datasets.load_digits()
    images = (digits.images / PIXEL_MAX).astype(dtype)[:, None]   # (1797, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    train_index, test_index = selection.train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed)
    return dict(x_train=images[train_index], y_train=labels[train_index],
                x_test=images[test_index], y_test=labels[test_index], test_index=test_index)


# ----------------------------------------------------------------------------------------
# Gradient check of the conv layer (the demo's first step)


def conv_gradient_check(seed: int = 0, echo=print) -> dict:
    """Gradient-check nn.Conv2d (stride 2, padding 1, float64) against central differences.

    Prints cs231n's line ``dx error: ...  dw error: ...  db error: ...`` and returns the
    errors and whether every entry passed.
    """
    rng = np.random.default_rng(seed)
    layer = nn.Conv2d(3, 4, 3, stride=2, padding=1, dtype=np.float64, rng=rng)
    x = rng.standard_normal((2, 3, 7, 7))        # 7 + 2 - 3 = 6, odd/2: a leftover row

    def forward(x, w, b):
        layer.weight.data, layer.bias.data = w, b
        return layer.forward(x)

    def backward(dy, x, w, b):
        forward(x, w, b)
        layer.zero_grad()
        dx = layer.backward(dy)
        return dx, layer.weight.grad.copy(), layer.bias.grad.copy()

    report = gradcheck(forward, backward, {"x": x, "w": layer.weight.data.copy(),
                                           "b": layer.bias.data.copy()}, seed=seed, h=1e-5)
    errors = {name: report[name].max_rel_error for name in ("x", "w", "b")}
    echo(f"Gradient check of the conv layer against central differences (cs231n's "
         f"rel_error),\n  {layer!r}, x {x.shape}:")
    echo(f"  dx error: {errors['x']:.1e}  dw error: {errors['w']:.1e}  "
         f"db error: {errors['b']:.1e}  {'ok' if report.passed else 'FAILED'}")
    return dict(layer=repr(layer), dx_error=errors["x"], dw_error=errors["w"],
                db_error=errors["b"], passed=report.passed)


# ----------------------------------------------------------------------------------------
# Training


def _check_options(epochs, batch_size, lr, optimizer, seed, dtype):
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        positive_int(value, name)
    if optimizer not in DEFAULT_LR:
        raise ValueError(f"optimizer={optimizer!r}; expected 'sgd' or 'adam'")
    lr = DEFAULT_LR[optimizer] if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not 0 < lr < math.inf:
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
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


def _evaluate(model, loss_fn, x, y, batch_size: int = 512) -> tuple[float, float, np.ndarray]:
    """(mean loss, accuracy, predicted classes) of ``model`` in eval mode."""
    model.eval()
    logits = np.concatenate([model.forward(x[i:i + batch_size])
                             for i in range(0, len(x), batch_size)])   # (N, classes)
    loss = loss_fn.forward(logits, y)
    predicted = logits.argmax(axis=1)
    return loss, float((predicted == y).mean()), predicted


@np.errstate(over="ignore", invalid="ignore", divide="ignore")   # the loss is checked
def _fit(data, *, epochs, batch_size, lr, optimizer, seed, dtype, progress, echo):
    """The training loop; returns (model, metrics). A NaN or infinite loss (training or
    held-out) raises :class:`TrainingDivergedError` at once."""
    init_seed, order_seed = np.random.SeedSequence(seed).spawn(2)
    model = build_model(ARCHITECTURE, dtype=dtype, rng=np.random.default_rng(init_seed))
    order = np.random.default_rng(order_seed)
    params = model.parameters()
    opt = (nn.Adam(params, lr=lr) if optimizer == "adam"
           else nn.SGD(params, lr=lr, momentum=SGD_MOMENTUM))
    loss_fn = nn.CrossEntropyLoss()
    x, y = data["x_train"], data["y_train"]
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total_steps, step = epochs * steps_per_epoch, 0
    history = {key: [] for key in ("epoch_train_loss", "epoch_train_accuracy",
                                   "epoch_test_loss", "epoch_test_accuracy")}
    tqdm = require("tqdm", "demo", "convgrad demo").tqdm if progress else None
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        shuffled = order.permutation(len(x))
        batches = [shuffled[i:i + batch_size] for i in range(0, len(x), batch_size)]
        bar = (tqdm(total=len(batches), desc=f"epoch {epoch + 1:>2}/{epochs}", unit="batch",
                    leave=True, dynamic_ncols=True) if progress else None)
        loss_sum, correct, seen = 0.0, 0, 0
        for batch in batches:
            opt.lr = lr * 0.5 * (1 + math.cos(math.pi * step / total_steps))   # cosine decay
            step += 1
            opt.zero_grad()
            logits = model.forward(x[batch])                                   # (B, 10)
            loss = loss_fn.forward(logits, y[batch])
            _check_finite(loss, f"at step {step} of {total_steps} (epoch {epoch + 1} of "
                          f"{epochs})", lr, bar)
            model.backward(loss_fn.backward())
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
        else:
            echo(f"epoch {epoch + 1:>2}/{epochs}  loss {loss_sum / seen:.4f}  "
                 f"acc {correct / seen:.3f}  test acc {test_accuracy:.3f}")
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
    """Write JSON atomically: a temporary file beside ``path``, then os.replace."""
    fd, temporary = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                                     prefix=f".{os.path.basename(path)}.", suffix=".tmp")
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
          dtype="float32", progress=True, echo=print, extra_metrics=None) -> dict:
    """Train the digits CNN and write model.npz, metrics.json and figures into ``out_dir``.

    Args:
        out_dir: output folder (created if needed).
        epochs, batch_size: positive ints.
        lr: the initial learning rate (cosine-decayed to 0); None: 0.003 for Adam, 0.05
            for SGD (momentum 0.9).
        optimizer: 'adam' or 'sgd'.
        seed: fixes the split, the initial weights and the batch order.
        dtype: 'float32' or 'float64', for the data and the parameters.
        progress: show a tqdm progress bar per epoch (else one line per epoch).
        echo: where to print (a function taking a string).
        extra_metrics: a dict merged into the metrics (the demo adds its gradient check).

    Returns the metrics dict also written to metrics.json. Raises
    :class:`TrainingDivergedError` (a ValueError) as soon as a training or held-out loss is
    NaN or infinite; nothing is written then, so an earlier model in ``out_dir`` is kept.
    """
    lr, dtype = _check_options(epochs, batch_size, lr, optimizer, seed, dtype)
    os.makedirs(out_dir, exist_ok=True)
    data = load_data(seed, dtype)
    model, metrics = _fit(data, epochs=epochs, batch_size=batch_size, lr=lr,
                          optimizer=optimizer, seed=seed, dtype=dtype, progress=progress,
                          echo=echo)
    metrics = _write_outputs(out_dir, model, dict(metrics, **(extra_metrics or {})), data)
    n_test = metrics["n_test"]
    echo(f"test accuracy {metrics['test_accuracy']:.2%} "
         f"({round(metrics['test_accuracy'] * n_test)} of {n_test} held-out digits) after "
         f"{epochs} epochs, {metrics['train_seconds']:.1f} s of training")
    return metrics


def demo(out_dir="convgrad-demo", *, seed=0, echo=print, **train_options) -> dict:
    """The main job: gradient-check the conv layer, train on the digits, write the outputs.

    Writes into ``out_dir``: metrics.json, model.npz, curves.png, filters.png,
    predictions.png. ``train_options`` (epochs, optimizer, ...) override :func:`train`'s
    defaults. Returns the metrics, with the gradient check's errors under
    'gradient_check'.
    """
    echo("convgrad demo: a CNN whose every layer has a hand-written NumPy backward pass\n")
    check = conv_gradient_check(seed, echo=echo)
    echo("")
    echo("Training on scikit-learn's 8x8 digits (1797 images, 25% held out, stratified):")
    metrics = train(out_dir, seed=seed, echo=echo, extra_metrics={"gradient_check": check},
                    **train_options)
    echo(f"\nOutputs in {os.path.abspath(out_dir)}:")
    for name, what in (("metrics.json", "accuracy, timings, per-epoch curves, architecture"),
                       ("model.npz", "the trained parameters (no pickle)"),
                       *[(f, "figure") for f in metrics["figures"]]):
        echo(f"  {name:<16} {what}")
    echo(f"Next: convgrad predict --model {os.path.join(out_dir, 'model.npz')}")
    return metrics


# ----------------------------------------------------------------------------------------
# Prediction


def image_to_digit(path) -> np.ndarray:
    """Read an image file as a digit in load_digits' format: (8, 8) floats in 0..16.

    Steps: transparent pixels are put on white; the image becomes grayscale in 0..1;
    if its mean is above 0.5 it is taken as a dark digit on a light background and
    inverted (load_digits' digits are white on black); it is resized to 8x8 by area
    averaging; its range is stretched linearly to 0..16. The digit should fill most of
    the picture, roughly centered, as in the training images.

    Raises ValueError naming the file when it is missing, unreadable, or blank.
    """
    require("matplotlib", "demo", "convgrad predict --image")   # brings Pillow
    from PIL import Image, UnidentifiedImageError
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"image file {path!r} does not exist" if not os.path.exists(path)
                         else f"image file {path!r} is not a file")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
                rgba = image.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                image = Image.alpha_composite(background, rgba)
            gray = image.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read image file {path!r}: {error}") from None
    pixels = np.asarray(gray, dtype=np.float32) / 255.0                # (H, W), 0..1
    if pixels.mean() > 0.5:
        pixels = 1.0 - pixels                                           # dark on light
    small = np.asarray(Image.fromarray(pixels).resize((8, 8), Image.Resampling.BOX),
                       dtype=np.float64)                                # (8, 8)
    low, high = small.min(), small.max()
    if high - low < 1e-6:
        raise ValueError(f"image file {path!r} is blank (one uniform gray): no digit to read")
    return (small - low) / (high - low) * PIXEL_MAX


def _load_digits_model(model_path):
    """Rebuild the network from the metadata in ``model_path``, then load the weights."""
    path = os.fspath(model_path)
    metadata = nn.read_metadata(path)
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a digits model written by convgrad demo/train "
                         f"(its metadata has no format {FORMAT!r})")
    if metadata.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path!r} has digits-model format version "
                         f"{metadata.get('version')!r}; this convgrad reads version "
                         f"{FORMAT_VERSION}")
    try:
        model = build_model(metadata["architecture"], dtype=metadata["dtype"], rng=0)
        split = metadata["split"]
        split_seed, test_fraction = int(split["seed"]), float(split["test_fraction"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{path!r}: the metadata does not describe a digits model "
                         f"({type(error).__name__}: {error})") from None
    nn.load(model, path)
    return model.eval(), metadata, split_seed, test_fraction


def predict(model_path, *, image=None, count=10, seed=0, echo=print) -> list:
    """Classify digits with a model saved by :func:`demo` or :func:`train`.

    Without ``image``: ``count`` digits drawn (with ``seed``) from the model's own
    held-out test split; prints true and predicted labels. With ``image`` (a path): that
    picture, prepared by :func:`image_to_digit`.

    Returns one dict per digit: predicted, probability (of the prediction) and, for test
    digits, index (in load_digits' order) and true; for an image, image and
    probabilities (all 10 classes).
    """
    model, metadata, split_seed, test_fraction = _load_digits_model(model_path)
    dtype = np.dtype(metadata["dtype"])
    if image is not None:
        digit = image_to_digit(image)
        x = (digit / PIXEL_MAX).astype(dtype)[None, None]                # (1, 1, 8, 8)
        p = nn.softmax(model.forward(x), axis=1)[0]                       # (10,)
        best = int(p.argmax())
        echo(f"{image}: predicted {best} (probability {p[best]:.3f})")
        return [dict(image=os.fspath(image), predicted=best, probability=float(p[best]),
                     probabilities=[float(v) for v in p])]
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 1:
        raise ValueError(f"count must be a positive int, got {count!r}")
    data = load_data(split_seed, dtype, test_fraction)
    n_test = len(data["y_test"])
    if count > n_test:
        raise ValueError(f"count={count} is more than the {n_test} digits of the test split")
    chosen = np.sort(np.random.default_rng(seed).choice(n_test, size=count, replace=False))
    p = nn.softmax(model.forward(data["x_test"][chosen]), axis=1)        # (count, 10)
    results = []
    echo(f"{'digit':>6}  {'true':>4}  {'predicted':>9}  probability")
    for i, row in zip(chosen, p):
        best, true = int(row.argmax()), int(data["y_test"][i])
        index = int(data["test_index"][i])
        echo(f"{index:>6}  {true:>4}  {best:>9}  {row[best]:.3f}"
             + ("" if best == true else "   <- wrong"))
        results.append(dict(index=index, true=true, predicted=best,
                            probability=float(row[best])))
    right = sum(r["true"] == r["predicted"] for r in results)
    echo(f"{right} of {count} correct")
    return results
