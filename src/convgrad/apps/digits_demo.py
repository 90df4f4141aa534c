"""`convgrad demo`, the main job: gradient-check the conv layer, then train the digits CNN
(:mod:`.digits`) and say where everything went."""
from __future__ import annotations

import inspect
import os

import numpy as np

from .. import nn
from ..gradcheck import gradcheck
from .digits import _check_options, check_out_dir, train
from .digits_data import require_extras

__all__ = ["demo", "conv_gradient_check"]


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


def _check_train_options(seed, train_options) -> None:
    """Validate train's options now, before the gradient check runs."""
    defaults = {name: p.default for name, p in inspect.signature(train).parameters.items()
                if p.kind is p.KEYWORD_ONLY}
    unknown = sorted(set(train_options) - set(defaults) - {"seed", "echo", "extra_metrics"})
    if unknown:
        raise TypeError(f"demo() got an unknown option {unknown[0]!r}; it takes train's "
                        f"options: {', '.join(sorted(set(defaults) - {'echo', 'seed'}))}")
    merged = {**defaults, **train_options}
    _check_options(merged["epochs"], merged["batch_size"], merged["lr"], merged["optimizer"],
                   seed, merged["dtype"])


def demo(out_dir="convgrad-demo", *, seed=0, echo=print, **train_options) -> dict:
    """The main job: gradient-check the conv layer, train on the digits, write the outputs.

    Writes into ``out_dir``: metrics.json, model.npz, curves.png, filters.png,
    predictions.png. ``train_options`` (epochs, optimizer, progress, ...) override
    :func:`~convgrad.apps.digits.train`'s defaults; they, the output folder and the
    optional packages are checked before any work. Returns the metrics, with the gradient
    check's errors under 'gradient_check'.
    """
    _check_train_options(seed, train_options)
    check_out_dir(out_dir)
    require_extras("convgrad demo", figures=True)
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
