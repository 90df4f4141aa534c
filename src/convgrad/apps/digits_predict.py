"""`convgrad predict`: classify digits with a model saved by ``demo`` or ``train``.

Either digits drawn from the model's own held-out test split (true and predicted labels
side by side), or a picture of one digit, prepared like the training digits by
:mod:`.digit_image` (the 8x8 image it became can be written with ``show``).
"""
from __future__ import annotations

import os

import numpy as np

from .. import nn
from .digits_data import FORMAT, FORMAT_VERSION, PIXEL_MAX, build_model, load_data, \
    require_extras

__all__ = ["predict", "load_digits_model", "UNSURE", "TOP"]

COUNT = 10          # test digits classified by default
UNSURE = 0.5        # below this top probability, predict warns that the model is unsure
TOP = 3             # classes listed for an image


def load_digits_model(model_path):
    """Rebuild the network from the metadata in ``model_path``, then load the weights.

    Returns (model in eval mode, metadata, split seed, test fraction).
    """
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


def _check_arguments(model_path, image, count, show) -> None:
    """Everything a user can get wrong, before the model or the data are loaded."""
    path = os.fspath(model_path)
    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist" if not os.path.exists(path)
                         else f"model file {path!r} is not a file")
    if image is not None:
        if count is not None:
            raise ValueError("count applies to the test digits; with an image there is one "
                             "digit to classify: leave count out")
        image = os.fspath(image)
        if not os.path.isfile(image):
            raise ValueError(f"image file {image!r} does not exist"
                             if not os.path.exists(image) else
                             f"image file {image!r} is not a file")
    elif show is not None:
        raise ValueError("show writes the 8x8 image made from an image file: give an image")
    elif count is not None and (not isinstance(count, (int, np.integer))
                                or isinstance(count, bool) or count < 1):
        raise ValueError(f"count must be a positive int, got {count!r}")
    if show is not None:
        folder = os.path.dirname(os.path.abspath(os.fspath(show)))
        if not os.path.isdir(folder):
            raise ValueError(f"cannot write {os.fspath(show)!r}: its folder does not exist")
        if os.path.isdir(os.fspath(show)):
            raise ValueError(f"cannot write {os.fspath(show)!r}: it is a folder")


def predict(model_path, *, image=None, count=None, seed=0, show=None, echo=print) -> list:
    """Classify digits with a model saved by :func:`~convgrad.apps.digits_demo.demo` or
    :func:`~convgrad.apps.digits.train`.

    Without ``image``: ``count`` (default ``COUNT``, 10) digits drawn with ``seed`` from the model's
    own held-out test split; prints each true label beside the prediction. With ``image``
    (a path): that picture, prepared by :func:`~convgrad.apps.digit_image.image_to_digit`;
    prints the top 3 classes and warns when the top probability is below ``UNSURE``;
    ``show`` (a path) writes the 8x8 image the network saw as a PNG.

    Returns one dict per digit: predicted, probability (of the prediction) and, for test
    digits, true and index (in load_digits' order); for an image, image, probabilities
    (all 10 classes), top (the 3 best (class, probability)) and digit (the 8x8 input,
    0..16).
    """
    _check_arguments(model_path, image, count, show)
    if image is not None:
        require_extras("convgrad predict --image", data=False, image=True)
    else:
        require_extras("convgrad predict", data=True)
    model, metadata, split_seed, test_fraction = load_digits_model(model_path)
    dtype = np.dtype(metadata["dtype"])
    if image is not None:
        return [_predict_image(model, dtype, image, show, echo)]
    count = COUNT if count is None else count
    data = load_data(split_seed, dtype, test_fraction)
    n_test = len(data["y_test"])
    if count > n_test:
        raise ValueError(f"count={count} is more than the {n_test} digits of the test split")
    chosen = np.sort(np.random.default_rng(seed).choice(n_test, size=count, replace=False))
    p = nn.softmax(model.forward(data["x_test"][chosen]), axis=1)        # (count, 10)
    results = []
    echo(f"{'true':>4}  {'predicted':>9}  {'probability':>11}  load_digits index")
    for i, row in zip(chosen, p):
        best, true = int(row.argmax()), int(data["y_test"][i])
        index = int(data["test_index"][i])
        echo(f"{true:>4}  {best:>9}  {row[best]:>11.3f}  {index:>17}"
             + ("" if best == true else "   <- wrong"))
        results.append(dict(index=index, true=true, predicted=best,
                            probability=float(row[best])))
    right = sum(r["true"] == r["predicted"] for r in results)
    echo(f"{right} of {count} correct")
    return results


def _predict_image(model, dtype, image, show, echo) -> dict:
    from .digit_image import image_to_digit, write_digit_png
    digit = image_to_digit(image)                                         # (8, 8), 0..16
    x = (digit / PIXEL_MAX).astype(dtype)[None, None]                     # (1, 1, 8, 8)
    p = nn.softmax(model.forward(x), axis=1)[0]                           # (10,)
    order = np.argsort(-p, kind="stable")[:3]
    top = [(int(k), float(p[k])) for k in order]
    best = top[0][0]
    echo(f"{os.fspath(image)}: predicted {best} (probability {p[best]:.3f}); next: "
         + ", ".join(f"{k} ({q:.3f})" for k, q in top[1:]))
    if show is not None:
        write_digit_png(digit, show)
        echo(f"the 8x8 image the network saw: {os.fspath(show)}")
    if p[best] < UNSURE:
        echo(f"warning: the model is unsure (top probability {p[best]:.2f} < {UNSURE}): the "
             f"picture may not look like the training digits"
             + ("" if show is not None else "; see what it saw with --show FILE.png"))
    return dict(image=os.fspath(image), predicted=best, probability=float(p[best]),
                probabilities=[float(v) for v in p], top=top,
                digit=np.round(digit, 4).tolist())
