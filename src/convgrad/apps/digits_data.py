"""The digits job's data and network: scikit-learn's 8x8 digits, and the small CNN.

The data: ``sklearn.datasets.load_digits()``, 1797 grayscale 8x8 images (white digit on
black, integers 0..16, shipped with scikit-learn: no download), scaled to 0..1 and split
75/25, stratified by class, with the seed. The network (21,482 parameters):

    Conv2d(1, 32, 3, padding=1) - BatchNorm2d - ReLU - MaxPool2d(2)     (N, 32, 4, 4)
    Conv2d(32, 64, 3, padding=1) - BatchNorm2d - ReLU - MaxPool2d(2)    (N, 64, 2, 2)
    Flatten - Linear(256, 10)                                           (N, 10) logits

The saved ``model.npz`` carries, as JSON metadata (``FORMAT``, ``FORMAT_VERSION``), what
is needed to rebuild the network and the split.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from .._optional import require

__all__ = ["build_model", "load_data", "require_extras", "ARCHITECTURE", "FORMAT",
           "FORMAT_VERSION", "PIXEL_MAX", "TEST_FRACTION", "MAX_SEED"]

FORMAT = "convgrad-digits"
FORMAT_VERSION = 1
ARCHITECTURE = {"image_size": 8, "channels": [32, 64], "kernel_size": 3, "batch_norm": True,
                "classes": 10}
TEST_FRACTION = 0.25
PIXEL_MAX = 16.0            # load_digits' pixels are integers 0..16
MAX_SEED = 2**32 - 1        # scikit-learn's random_state takes 0 .. 2**32 - 1


def require_extras(feature: str, *, data=True, figures=False, image=False) -> None:
    """Check, before any work, that the optional packages a digits command needs are
    installed; raise :class:`convgrad._optional.MissingExtra` naming ``feature`` (e.g.
    'convgrad train') and the extra to install if one is missing.

    data: scikit-learn (the digits); figures: matplotlib; image: Pillow (reading or
    writing an image file). tqdm is optional: without it progress is shown as plain lines.
    """
    if data:
        require("sklearn.datasets", "demo", feature)
        require("sklearn.model_selection", "demo", feature)
    if figures:
        require("matplotlib.figure", "demo", feature)
        require("matplotlib.backends.backend_agg", "demo", feature)
    if image:
        require("PIL.Image", "demo", feature)


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
    datasets = require("sklearn.datasets", "demo", "the digits job")
    selection = require("sklearn.model_selection", "demo", "the digits job")
    digits = datasets.load_digits()
    images = (digits.images / PIXEL_MAX).astype(dtype)[:, None]   # (1797, 1, 8, 8)
    labels = digits.target.astype(np.int64)
    train_index, test_index = selection.train_test_split(
        np.arange(len(labels)), test_size=test_fraction, stratify=labels, random_state=seed)
    return dict(x_train=images[train_index], y_train=labels[train_index],
                x_test=images[test_index], y_test=labels[test_index], test_index=test_index)
