"""The whole training step, timed: convgrad.nn against the same model in torch.nn.

`convgrad bench --train` times what a user waits for: forward, loss, backward and an Adam
step of a small CNN, for two models and two batch sizes:

    digits   (N, 1, 8, 8): apps.digits.build_model (conv 1->32 3x3 'same' - batch norm -
             ReLU - max pool 2 - conv 32->64 - batch norm - ReLU - max pool 2 - linear 256->10)
    cifar    (N, 3, 32, 32): conv 3->32 3x3 pad 1 - ReLU - max pool 2 - conv 32->64 3x3
             pad 1 - ReLU - max pool 2 - linear 4096->10

The torch.nn twin of each convgrad model is built layer by layer from it, with the same
initial weights. Before timing, both are trained a few steps on the same data and their
losses compared (float32: relative 1e-4, float64: 1e-9): a speed comparison between two
programs that compute different things would mean nothing.

Both skip the gradient with respect to the input images, which a training step does not
need: torch.nn because x does not require grad, convgrad.nn through
``Sequential.backward(dy, input_grad=False)``.

Timing (:mod:`convgrad.apps.timing`): interleaved pairs, one block of steps of each in
turn; each block long enough for the clock; the figure per step is the median over pairs
with the min and max; the ratio is the median of the per-pair ratios.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np

from .. import nn
from . import timing

__all__ = ["MODELS", "BATCHES", "TrainResult", "build_pair", "check_numerics", "run",
           "format_table", "plot"]

MODELS = ("digits", "cifar")
BATCHES = (64, 256)
_LR = 1e-3


def build_convgrad(model: str, dtype, seed: int = 0) -> tuple[nn.Sequential, tuple]:
    """The convgrad model and its input's per-sample shape."""
    rng = np.random.default_rng(seed)
    if model == "digits":
        from .digits import ARCHITECTURE, build_model
        return build_model(ARCHITECTURE, dtype=dtype, rng=rng), (1, 8, 8)
    if model == "cifar":
        return nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1, dtype=dtype, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, dtype=dtype, rng=rng), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 8 * 8, 10, dtype=dtype, rng=rng)), (3, 32, 32)
    raise ValueError(f"unknown model {model!r}; choose from {', '.join(MODELS)}")


def _torch_twin(torch, model: nn.Sequential):
    """torch.nn.Sequential with the same layers and a copy of the same parameters."""
    layers = []
    tensor = lambda a: torch.from_numpy(np.array(a))             # noqa: E731  (a copy)
    for layer in model:
        if isinstance(layer, nn.Conv2d):
            padding = layer.padding if isinstance(layer.padding, str) else tuple(layer.padding)
            twin = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                   layer.stride, padding, layer.dilation, layer.groups,
                                   bias=layer.bias is not None)
        elif isinstance(layer, nn.BatchNorm2d):
            twin = torch.nn.BatchNorm2d(layer.num_features, layer.eps, layer.momentum)
        elif isinstance(layer, nn.Linear):
            twin = torch.nn.Linear(layer.in_features, layer.out_features,
                                   bias=layer.bias is not None)
        elif isinstance(layer, nn.ReLU):
            twin = torch.nn.ReLU()
        elif isinstance(layer, nn.MaxPool2d):
            twin = torch.nn.MaxPool2d(layer.kernel_size, layer.stride, layer.padding)
        elif isinstance(layer, nn.Flatten):
            twin = torch.nn.Flatten()
        else:
            raise TypeError(f"no torch.nn twin for {type(layer).__name__}")
        for name in ("weight", "bias"):
            parameter = getattr(layer, name, None)
            if parameter is not None:
                getattr(twin, name).data = tensor(parameter.data)
        layers.append(twin)
    dtype = torch.from_numpy(np.zeros(0, model.parameters()[0].dtype)).dtype
    return torch.nn.Sequential(*layers).to(dtype)           # buffers (batch norm) too


@dataclass
class Pair:
    """A convgrad model and its torch twin, with an optimizer each and one batch of data."""
    model: str
    batch: int
    dtype: str
    ours: object
    theirs: object | None
    step_ours: object
    step_theirs: object | None


def build_pair(torch, model: str, batch: int, dtype: str, seed: int = 0) -> Pair:
    """Both models from the same weights, Adam (lr 1e-3) on each, one random batch."""
    ours, shape = build_convgrad(model, np.dtype(dtype), seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((batch, *shape), dtype=np.dtype(dtype))
    labels = rng.integers(0, 10, batch)
    loss_fn, opt = nn.CrossEntropyLoss(), nn.Adam(ours.parameters(), lr=_LR)

    def step_ours():
        opt.zero_grad()
        loss = loss_fn.forward(ours.forward(x), labels)
        ours.backward(loss_fn.backward(), input_grad=False)   # as torch: x needs no grad
        opt.step()
        return loss

    if torch is None:
        return Pair(model, batch, dtype, ours, None, step_ours, None)
    theirs = _torch_twin(torch, ours)
    topt = torch.optim.Adam(theirs.parameters(), lr=_LR)
    tx, tlabels = torch.from_numpy(x), torch.from_numpy(labels)

    def step_theirs():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(tx), tlabels)
        loss.backward()
        topt.step()
        return float(loss.detach())

    return Pair(model, batch, dtype, ours, theirs, step_ours, step_theirs)


def check_numerics(pair: Pair, steps: int = 3) -> float:
    """Train both ``steps`` steps from the same start; the largest relative loss difference.

    Raises RuntimeError when it exceeds float32's 1e-4 (float64: 1e-9).
    """
    worst = 0.0
    for _ in range(steps):
        ours, theirs = pair.step_ours(), pair.step_theirs()
        worst = max(worst, abs(ours - theirs) / max(abs(theirs), 1e-30))
    tolerance = 1e-4 if pair.dtype == "float32" else 1e-9
    if not worst <= tolerance:
        raise RuntimeError(f"{pair.model} batch {pair.batch} {pair.dtype}: convgrad's losses "
                           f"differ from torch.nn's by {worst:.2e} (relative), more than "
                           f"{tolerance:g}; the timing would compare different computations")
    return worst


@dataclass
class TrainResult:
    model: str
    batch: int
    dtype: str
    seconds: timing.Spread
    torch_seconds: timing.Spread | None = None
    ratio: timing.Spread | None = None
    loss_difference: float | None = None
    pairs: list = field(default_factory=list)


def run(models=MODELS, batches=BATCHES, dtypes=("float32",), repeats: int = 15,
        use_torch: bool = True, clock: str = "cpu", threads: int = 1,
        progress: bool = True) -> tuple[list[TrainResult], dict]:
    """Time every model x batch x dtype; returns (results, environment)."""
    from . import bench
    torch = bench._load_torch(use_torch, threads)
    jobs = [(m, b, d) for m in models for b in batches for d in dtypes]
    bar = bench._progress(len(jobs), progress)
    results = []
    with timing.Session(clock, threads) as session:
        for model, batch, dtype in jobs:
            bar.describe(f"{model} batch {batch} {dtype}")
            pair = build_pair(torch, model, batch, dtype)
            difference = check_numerics(pair) if torch is not None else None
            pairs = session.pairs(pair.step_ours, pair.step_theirs, repeats)
            result = TrainResult(model, batch, dtype, timing.spread([p[0] for p in pairs]),
                                 loss_difference=difference, pairs=pairs)
            if torch is not None:
                result.torch_seconds = timing.spread([p[1] for p in pairs])
                result.ratio = timing.spread([p[0] / p[1] for p in pairs])
            results.append(result)
            bar.update()
    bar.close()
    env = bench.environment(threads)
    env.update(session.report())
    env["torch_compared"] = torch is not None
    env["torch_requested"] = use_torch
    return results, env


def format_table(results, env) -> str:
    has_torch = any(r.ratio is not None for r in results)
    header = ["model", "batch", "dtype", "convgrad step"]
    if has_torch:
        header += ["torch.nn step", "ratio", "loss diff"]
    rows = [header]
    for r in results:
        row = [r.model, str(r.batch), r.dtype, r.seconds.format_ms()]
        if has_torch:
            row += [r.torch_seconds.format_ms(), r.ratio.format_ratio(),
                    f"{r.loss_difference:.1e}"]
        rows.append(row)
    lines = timing.markdown(rows)
    lines.append("")
    pairs = len(results[0].pairs) if results else 0
    lines.append(f"A step = forward, cross-entropy loss, backward, Adam (lr 1e-3); per step, "
                 f"median (min-max) over {pairs} interleaved pairs of blocks of steps.")
    if has_torch:
        ratios = [r.ratio.median for r in results]
        lines.append(f"Geometric mean of the ratios: {statistics.geometric_mean(ratios):.2f}x. "
                     f"loss diff: the largest relative difference between the two libraries' "
                     f"losses over 3 steps from the same weights and data.")
    from .bench import header_lines
    lines.extend(header_lines(env))
    return "\n".join(lines)


def plot(results, path: str) -> None:
    """Bars of the step-time ratios (or step times without PyTorch), spread as whiskers."""
    from .bench import bar_chart
    ratios = all(r.ratio for r in results)
    bar_chart([f"{r.model}\nbatch {r.batch}\n{r.dtype}" for r in results],
              [r.ratio if ratios else r.seconds for r in results], ratios,
              [r.dtype for r in results], "convgrad training step", path)
