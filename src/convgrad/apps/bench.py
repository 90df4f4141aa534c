"""The benchmark behind `convgrad bench`: convgrad against PyTorch CPU, side by side.

Each workload runs forward + backward (y, dx, dw, db) with random inputs and a random
upstream gradient; `convgrad bench --train` times whole training steps instead
(:mod:`convgrad.apps.bench_train`). How the time is measured (threads, clock, interleaved
pairs, median with min and max, the machine's load) is :mod:`convgrad.apps.timing`'s
docstring. PyTorch's OpenMP threads are told to sleep when idle (OMP_WAIT_POLICY=PASSIVE,
set before torch is imported unless the caller set it; it does not change PyTorch's own
speed), so that with several threads the libraries do not slow each other down.
Throughput is given in GFLOP/s and as a fraction of NumPy's own large square matrix
product measured in the same run, dtype and threads. Peak memory is measured in fresh
subprocesses (growth of the peak resident memory during one forward + backward, after
the inputs exist and after a tiny warm-up call has done each library's one-time setup),
the same way for both libraries.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from .. import functional
from ..memory import format_bytes
from . import timing

__all__ = ["Workload", "WORKLOADS", "SMALL", "run", "format_table", "gemm_peak",
           "environment", "header_lines", "to_json", "plot", "bar_chart", "figure"]


@dataclass(frozen=True)
class Workload:
    name: str
    x_shape: tuple
    w_shape: tuple
    stride: int | tuple = 1
    padding: int | tuple | str = 0
    groups: int = 1
    note: str = ""

    @property
    def out_size(self) -> tuple:
        """The output's spatial size, from the one geometry module ('same', pairs...)."""
        from ..geometry import conv_geometry
        x = np.broadcast_to(np.float64(0), self.x_shape)    # shapes only, nothing allocated
        w = np.broadcast_to(np.float64(0), self.w_shape)
        *_, g = conv_geometry(x, w, nd=len(self.x_shape) - 2, stride=self.stride,
                              padding=self.padding, groups=self.groups, op="convgrad bench")
        return g.out_size

    def describe(self) -> str:
        """'W2 small CNN: x (64, 16, 32, 32), w (32, 16, 3, 3), stride 1, padding 1'."""
        text = (f"{self.name} {self.note}: x {self.x_shape}, w {self.w_shape}, "
                f"stride {self.stride}, padding {self.padding}")
        return text + (f", groups {self.groups}" if self.groups != 1 else "")

    def flops(self) -> float:
        """Multiply-adds x 2 of forward, dx and dw (each the same count)."""
        n, f = self.x_shape[0], self.w_shape[0]
        per_output = 2 * int(np.prod(self.w_shape[1:]))
        return 3.0 * n * f * int(np.prod(self.out_size)) * per_output


WORKLOADS = [
    Workload("W2", (64, 16, 32, 32), (32, 16, 3, 3), 1, 1, note="small CNN"),
    Workload("W3", (32, 64, 56, 56), (64, 64, 3, 3), 1, 1, note="resnet block"),
    Workload("W4", (32, 256, 14, 14), (256, 256, 3, 3), 1, 1, note="deep narrow"),
    Workload("W5", (32, 256, 28, 28), (64, 256, 1, 1), 1, 0, note="1x1"),
    Workload("W6", (16, 3, 224, 224), (64, 3, 7, 7), 2, 3, note="large kernel"),
    Workload("W7", (32, 128, 28, 28), (128, 1, 3, 3), 1, 1, groups=128, note="depthwise"),
]
SMALL = [
    Workload("S1", (2, 3, 4, 4), (3, 3, 4, 4), 2, 1, note="cs231n naive test"),
    Workload("S2", (100, 3, 31, 31), (25, 3, 3, 3), 2, 1, note="cs231n fast test"),
    Workload("S3", (1, 1, 8, 8), (8, 1, 3, 3), 1, 1, note="N=1 digit"),
]
_ALL = {w.name: w for w in WORKLOADS + SMALL}


def _arrays(workload: Workload, dtype, seed=0):
    # drawn directly in the target dtype: no temporaries that would raise the process's
    # peak memory above the inputs themselves (the memory probe measures the growth)
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    x = rng.standard_normal(workload.x_shape, dtype=dtype)
    w = rng.standard_normal(workload.w_shape, dtype=dtype)
    b = rng.standard_normal(workload.w_shape[0], dtype=dtype)
    dy = rng.standard_normal((workload.x_shape[0], workload.w_shape[0], *workload.out_size),
                             dtype=dtype)
    return x, w, b, dy


def _convgrad_step(workload, algorithm, x, w, b, dy):
    kw = dict(stride=workload.stride, padding=workload.padding, groups=workload.groups,
              algorithm=algorithm)
    functional.conv2d(x, w, b, **kw)
    functional.conv2d_backward(dy, x, w, b, **kw)


def _torch_step(torch, workload, x, w, b, dy):
    x = x.detach().requires_grad_()
    w = w.detach().requires_grad_()
    b = b.detach().requires_grad_()
    y = torch.nn.functional.conv2d(x, w, b, stride=workload.stride, padding=workload.padding,
                                   groups=workload.groups)
    y.backward(dy)


def gemm_peak(dtype, size: int = 2048, repeats: int = 3, clock=time.perf_counter) -> float:
    """GFLOP/s of NumPy's square matrix product of this size: the machine's BLAS ceiling
    (with the threads and on the clock of the caller)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(dtype)
    b = rng.standard_normal((size, size)).astype(dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = clock()
        a @ b
        best = min(best, clock() - start)
    return 2.0 * size ** 3 / max(best, 1e-9) / 1e9


def _blas_threads() -> int:
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return os.cpu_count() or 1


def environment(threads: int | None = None) -> dict:
    """What the figures depend on: CPU, BLAS and its kernel, threads, library versions."""
    from .timing import blas_kernel
    info = {"python": platform.python_version(), "numpy": np.__version__,
            "machine": platform.machine(), "cpu": _cpu_name(), "cores": os.cpu_count(),
            "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(not set)"),
            "threads": threads or _blas_threads(), "blas_kernel": blas_kernel()}
    try:
        config = np.show_config(mode="dicts")
        blas = config["Build Dependencies"]["blas"]
        info["blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001  (older NumPy: no dict mode)
        info["blas"] = "unknown"
    torch = sys.modules.get("torch")           # only when this run imported it
    info["torch"] = getattr(torch, "__version__", None)
    return info


def _cpu_name() -> str:
    """The CPU model as lscpu names it (else /proc/cpuinfo, else platform)."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10,
                             env={**os.environ, "LC_ALL": "C"})
        for line in out.stdout.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


@dataclass
class Result:
    workload: str
    note: str
    dtype: str
    engine: str
    seconds: timing.Spread
    gflops: float                    # at the median time
    fraction_of_gemm: float
    torch_seconds: timing.Spread | None = None
    ratio: timing.Spread | None = None
    memory_bytes: int | None = None
    torch_memory_bytes: int | None = None
    memory_ratio: float | None = None
    repeats: list = field(default_factory=list)


def _load_torch(use_torch: bool, threads: int | None = None):
    if not use_torch:
        return None
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads or _blas_threads())
    return torch


def _applies(workload: Workload, engine: str, dtype: str = "float64") -> bool:
    """reference: small workloads only; winograd*: 2-D 3x3 stride 1 only (winograd7:
    float64 only)."""
    if engine == "reference":
        return int(np.prod(workload.x_shape)) <= 50_000
    if engine == "winograd7" and np.dtype(dtype) != np.float64:
        return False
    if engine in ("winograd", "winograd4", "winograd7"):
        return (len(workload.w_shape) == 4 and tuple(workload.w_shape[2:]) == (3, 3)
                and workload.stride in (1, (1, 1)))
    return True


def not_applicable(workloads, dtypes, engines) -> list[str]:
    """'W6 float64 winograd4: ...' for each combination :func:`run` would skip, and why."""
    workloads = [(_ALL[w] if isinstance(w, str) else w) for w in workloads]
    skipped = []
    for w in workloads:
        for dt in dtypes:
            for engine in engines:
                if _applies(w, engine, dt):
                    continue
                if engine == "reference":
                    why = "the reference engine's loops are timed on small workloads only"
                elif _applies(w, engine, "float64"):
                    why = "winograd7 computes in float64 only"
                else:
                    why = f"{engine} applies to 2-D 3x3 stride-1 convolutions only"
                skipped.append(f"{w.name} {dt} {engine}: {why}")
    return skipped


def run(workloads=None, dtypes=("float32", "float64"), engines=("auto",), repeats: int = 5,
        use_torch: bool = True, memory: bool = False, progress: bool = True,
        gemm_size: int = 2048, clock: str = "cpu", threads: int = 1
        ) -> tuple[list[Result], dict]:
    """Time each workload x dtype x engine; returns (results, environment incl. GEMM peaks)."""
    workloads = [(_ALL[w] if isinstance(w, str) else w) for w in (workloads or WORKLOADS)]
    torch = _load_torch(use_torch, threads)
    jobs = [(w, dt, engine) for w in workloads for dt in dtypes for engine in engines
            if _applies(w, engine, dt)]
    bar = _progress(len(jobs), progress)
    results = []
    with timing.Session(clock, threads) as session:
        peaks = {dt: gemm_peak(dt, gemm_size, clock=session.clock) for dt in dtypes}
        for workload, dtype, engine in jobs:
            bar.describe(f"{workload.name} {dtype} {engine}")
            x, w, b, dy = _arrays(workload, dtype)
            ours = lambda: _convgrad_step(workload, engine, x, w, b, dy)  # noqa: E731
            theirs = None
            if torch is not None:
                tx, tw, tb, tdy = (torch.from_numpy(a) for a in (x, w, b, dy))
                theirs = lambda: _torch_step(torch, workload, tx, tw, tb, tdy)  # noqa: E731
            pairs = session.pairs(ours, theirs, repeats)
            seconds = timing.spread(p[0] for p in pairs)
            gflops = workload.flops() / seconds.median / 1e9
            result = Result(workload.name, workload.note, dtype, engine, seconds, gflops,
                            gflops / peaks[dtype], repeats=pairs)
            if torch is not None:
                result.torch_seconds = timing.spread(p[1] for p in pairs)
                result.ratio = timing.spread(p[0] / p[1] for p in pairs)
            if memory:
                result.memory_bytes = memory_probe("convgrad", workload, dtype, engine)
                if torch is not None:
                    result.torch_memory_bytes = memory_probe("torch", workload, dtype)
                    if result.torch_memory_bytes:        # no ratio to nothing (S3: 0 B)
                        result.memory_ratio = result.memory_bytes / result.torch_memory_bytes
            results.append(result)
            bar.update()
    bar.close()
    env = environment(threads)
    env.update(session.report())
    env["gemm_peak_gflops"] = peaks
    env["torch_compared"] = torch is not None
    env["torch_requested"] = use_torch
    env["OMP_WAIT_POLICY"] = os.environ.get("OMP_WAIT_POLICY", "(not set)")
    return results, env


def memory_probe(library: str, workload, dtype: str, engine: str = "auto") -> int:
    """Peak extra memory (bytes) of one forward + backward, in a fresh subprocess."""
    workload = _ALL[workload] if isinstance(workload, str) else workload
    spec = json.dumps(asdict(workload))
    code = (f"import convgrad.apps.bench as b; print(b._peak_in_this_process("
            f"{library!r}, {spec!r}, {dtype!r}, {engine!r}))")
    # env given explicitly: the child must not inherit what an imported library changed
    # in this process's C-level environment (seen: PyTorch's import), only os.environ
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ))
    return int(out.stdout.strip().splitlines()[-1])


def _tuples(value):
    """JSON lists back to the tuples the geometry expects: (1, 2), ((1, 2), (0, 1))."""
    return tuple(_tuples(v) if isinstance(v, list) else v for v in value)


def _peak_rss_bytes() -> int:
    """This process's peak resident memory: VmHWM on Linux, which starts afresh at exec
    (ru_maxrss does not: a child inherits its parent's peak), else ru_maxrss."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    scale = 1 if sys.platform == "darwin" else 1024       # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def _peak_in_this_process(library, spec: str, dtype, engine) -> int:
    fields = json.loads(spec)
    wl = Workload(**{k: tuple(v) if isinstance(v, list) and k.endswith("shape") else
                     (_tuples(v) if isinstance(v, list) else v) for k, v in fields.items()})
    def make_step(workload):
        arrays = _arrays(workload, dtype)
        if library == "torch":
            torch = _load_torch(True)
            tensors = [torch.from_numpy(a) for a in arrays]
            return lambda: _torch_step(torch, workload, *tensors)
        return lambda: _convgrad_step(workload, engine, *arrays)

    make_step(_ALL["S3"])()          # one-time setup (thread pools, lazy initialization)
    step = make_step(wl)             # is not part of the workload's footprint
    before = _peak_rss_bytes()
    step()
    return _peak_rss_bytes() - before


class _progress:
    """tqdm when installed, wanted and stderr is a terminal; else a plain line per job on
    stderr (a log or a pipe gets lines, not a stream of carriage returns)."""

    def __init__(self, total, enabled):
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, file=sys.stderr, leave=False)
            except ImportError:
                pass
        self.total, self.done = total, 0

    def describe(self, text):
        if self.bar is not None:
            self.bar.set_description(text)
        elif self.enabled:
            print(f"[{self.done + 1}/{self.total}] {text}", file=sys.stderr, flush=True)

    def update(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update()

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _geomean(values):
    values = [v for v in values if v]
    return float(np.exp(np.mean(np.log(values)))) if values else None


def summary(results) -> list[str]:
    """Geometric means of the ratios over W2-W6, per dtype and engine."""
    lines = []
    for dtype in sorted({r.dtype for r in results}):
        for engine in sorted({r.engine for r in results}):
            ratios = [r.ratio.median for r in results if r.dtype == dtype
                      and r.engine == engine and r.ratio
                      and r.workload in ("W2", "W3", "W4", "W5", "W6")]
            if len(ratios) == 5:
                worst = max(ratios)
                lines.append(f"{dtype} {engine}: geometric mean of convgrad/PyTorch over "
                             f"W2-W6 = {_geomean(ratios):.2f}x (worst {worst:.2f}x)")
    return lines


def header_lines(env) -> list[str]:
    """What the figures were measured on and how: CPU, BLAS kernel, threads, clock, load."""
    if env.get("torch_compared"):
        torch = f"PyTorch {env['torch']}"
    elif env.get("torch_requested"):
        torch = "PyTorch is not installed: no comparison (pip install torch)"
    else:
        torch = "PyTorch not compared (--no-torch)"
    lines = [f"CPU: {env['cpu']} ({env['cores']} cores); NumPy {env['numpy']}, BLAS "
             f"{env['blas_kernel']}; {torch}"]
    setting = f"{env['threads']} thread(s) for both libraries; clock: {env['clock_description']}"
    if env.get("load_average_max") is not None:
        setting += f"; 1-minute load average at most {env['load_average_max']:.1f}"
    lines.append(setting)
    if env.get("load_warning"):
        lines.append(env["load_warning"])
    return lines


def format_table(results, env) -> str:
    has_torch = any(r.ratio is not None for r in results)
    has_memory = any(r.memory_bytes is not None for r in results)
    header = ["workload", "dtype", "engine", "time", "GFLOP/s", "of GEMM"]
    if has_torch:
        header += ["PyTorch", "ratio"]
    if has_memory:
        header += ["peak mem", "PyTorch mem", "mem ratio"]
    rows = [header]
    for r in results:
        row = [f"{r.workload} {r.note}", r.dtype, r.engine, r.seconds.format_ms(),
               f"{r.gflops:.1f}", f"{r.fraction_of_gemm:.0%}"]
        if has_torch:
            row += [r.torch_seconds.format_ms() if r.torch_seconds else "-",
                    r.ratio.format_ratio() if r.ratio else "-"]
        if has_memory:
            row += [format_bytes(r.memory_bytes) if r.memory_bytes is not None else "-",
                    format_bytes(r.torch_memory_bytes) if r.torch_memory_bytes is not None
                    else "-", f"{r.memory_ratio:.2f}x" if r.memory_ratio else "-"]
        rows.append(row)
    lines = timing.markdown(rows)
    peaks = ", ".join(f"{dt} {gf:.0f} GFLOP/s" for dt, gf in env["gemm_peak_gflops"].items())
    lines.append("")
    lines.append(f"Forward + backward (y, dx, dw, db); median (min-max) over "
                 f"{len(results[0].repeats) if results else 0} interleaved repetitions. "
                 f"NumPy square GEMM peak in this run: {peaks}.")
    lines.extend(header_lines(env))
    lines.extend(summary(results))
    return "\n".join(lines)


def to_json(results, env) -> str:
    return json.dumps({"environment": env, "results": [asdict(r) for r in results]}, indent=2)


def plot(results, path: str) -> None:
    """A bar chart of convgrad/PyTorch time ratios (or times without PyTorch), each bar
    labelled with its median and spanning its min-max spread."""
    bar_chart([f"{r.workload}\n{r.dtype}\n{r.engine}" for r in results],
              [r.ratio for r in results] if all(r.ratio for r in results) else
              [r.seconds for r in results],
              all(r.ratio for r in results), [r.dtype for r in results],
              "convgrad forward + backward", path)


def bar_chart(labels, spreads, ratios: bool, dtypes, title: str, path: str) -> None:
    """Bars at the medians, whiskers from min to max, each bar labelled with its value."""
    from .._optional import require
    plt = require("matplotlib.pyplot", "bench", "convgrad bench --plot")
    fig = figure(labels, spreads, ratios, dtypes, title)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def figure(labels, spreads, ratios: bool, dtypes, title: str):
    """The matplotlib figure of :func:`bar_chart`."""
    from .._optional import require
    matplotlib = require("matplotlib", "bench", "convgrad bench --plot")
    matplotlib.use("Agg")
    plt = require("matplotlib.pyplot", "bench", "convgrad bench --plot")
    fig, ax = plt.subplots(figsize=(max(5.5, 0.55 * len(labels) + 2.5), 4))
    scale = 1.0 if ratios else 1e3
    values = [s.median * scale for s in spreads]
    errors = [[(s.median - s.min) * scale for s in spreads],
              [(s.max - s.median) * scale for s in spreads]]
    colors = ["tab:blue" if dt == "float32" else "tab:orange" for dt in dtypes]
    ax.bar(range(len(values)), values, color=colors, yerr=errors, capsize=4,
           error_kw={"elinewidth": 1})
    for i, (value, spread) in enumerate(zip(values, spreads)):   # above the whisker
        ax.annotate(f"{value:.2f}x" if ratios else f"{value:.3g} ms",
                    (i, spread.max * scale), xytext=(0, 4), textcoords="offset points",
                    ha="center", fontsize=8)
    ax.set_xticks(range(len(values)), labels, fontsize=7)
    if ratios:
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_ylabel("time convgrad / PyTorch (lower is better)")
    else:
        ax.set_ylabel("time (ms)")
    ax.margins(y=0.15)
    ax.set_title(f"{title}: median, whiskers min-max\n(blue float32, orange float64)",
                 fontsize=9)
    fig.tight_layout()
    return fig
