"""Shrinking: the smallest geometry that still fails the same way, and its reproduction.

Starting from the smallest failing battery case of a failure class (an output and how it
fails: 'wrong', or the exception type), :func:`shrink` tries smaller geometries (fewer
samples, channels, filters, rows, columns, a smaller kernel, then less padding and a
smaller stride) and keeps the first that still fails in the same class, until none does
or the attempts run out. Size is x.size + w.size, ties broken by stride + pad.
"""
from __future__ import annotations

from dataclasses import replace

from .battery import Geometry

__all__ = ["shrink", "reproduction"]


def _key(g: Geometry):
    return (g.elements, g.stride + g.pad, g.x_shape, g.w_shape)


def _with(g: Geometry, n=None, c=None, h=None, w=None, f=None, kh=None, kw=None,
          stride=None, pad=None) -> Geometry:
    n0, c0, h0, w0 = g.x_shape
    f0, _, kh0, kw0 = g.w_shape
    c1 = c0 if c is None else c
    return replace(g, x_shape=(n0 if n is None else n, c1, h0 if h is None else h,
                               w0 if w is None else w),
                   w_shape=(f0 if f is None else f, c1, kh0 if kh is None else kh,
                            kw0 if kw is None else kw),
                   stride=g.stride if stride is None else stride,
                   pad=g.pad if pad is None else pad, label="shrunk")


def _candidates(g: Geometry):
    """Smaller geometries, the biggest steps first."""
    n, c, h, w = g.x_shape
    f, _, kh, kw = g.w_shape
    s, p = g.stride, g.pad
    yield _with(g, n=1)
    yield _with(g, c=1)
    yield _with(g, f=1)
    yield _with(g, n=n - 1)
    yield _with(g, c=c - 1)
    yield _with(g, f=f - 1)
    yield _with(g, h=h - s, w=w - s)
    yield _with(g, h=h - s)
    yield _with(g, w=w - s)
    yield _with(g, h=h - 1, w=w - 1)
    yield _with(g, h=h - 1)
    yield _with(g, w=w - 1)
    yield _with(g, kh=kh - 1, kw=kw - 1)
    yield _with(g, kh=kh - 1)
    yield _with(g, kw=kw - 1)
    yield _with(g, h=h - 1, kh=kh - 1)
    yield _with(g, w=w - 1, kw=kw - 1)
    yield _with(g, pad=p - 1)
    yield _with(g, stride=s - 1)
    yield _with(g, pad=p - 1, h=h + 2, w=w + 2)


def shrink(start: Geometry, still_fails, max_attempts: int = 40):
    """(smallest failing geometry found, attempts used); ``still_fails(g) -> bool``."""
    best, attempts, seen = start, 0, {start.x_shape + start.w_shape + (start.stride, start.pad)}
    improved = True
    while improved and attempts < max_attempts:
        improved = False
        for candidate in _candidates(best):
            key = candidate.x_shape + candidate.w_shape + (candidate.stride, candidate.pad)
            if key in seen or not candidate.valid or _key(candidate) >= _key(best):
                continue
            seen.add(key)
            attempts += 1
            if still_fails(candidate):
                best, improved = candidate, True
                break
            if attempts >= max_attempts:
                break
    return replace(best, label="shrunk"), attempts


def reproduction(g: Geometry, api: str, module: str, names, output: str) -> str:
    """Python that reproduces the failure with the grader's data (seed 0), ready to paste."""
    forward, backward = names
    s, p = g.stride, g.pad
    use_forward = forward is not None and (output == "forward" or api == "cs231n")
    imports = ", ".join(n for n in (forward if use_forward else None,
                                    backward if output != "forward" else None) if n)
    lines = ["import numpy as np",
             "import convgrad",
             f"from {module} import {imports}",
             "rng = np.random.default_rng(0)",
             f"x = rng.standard_normal({g.x_shape})",
             f"w = rng.standard_normal({g.w_shape})",
             f"b = rng.standard_normal({g.w_shape[0]})"]
    if output != "forward":
        lines.append(f"dout = rng.standard_normal({g.y_shape})")
    if api == "cs231n":
        lines.append(f"conv_param = {{'stride': {s}, 'pad': {p}}}")
        lines.append(f"out, cache = {forward}(x, w, b, conv_param)" if use_forward
                     else "cache = (x, w, b, conv_param)")
        if output != "forward":
            lines.append(f"dx, dw, db = {backward}(dout, cache)")
    else:
        if use_forward:
            lines.append(f"out = {forward}(x, w, b, {s}, {p})")
        if output != "forward":
            lines.append(f"dx, dw, db = {backward}(dout, x, w, b, {s}, {p})")
    if output == "forward":
        lines.append(f"right = convgrad.conv2d(x, w, b, stride={s}, padding={p})")
        lines.append("print(out.shape == right.shape and np.allclose(out, right))  # False")
    else:
        lines.append(f"dx_right, dw_right, db_right = convgrad.conv2d_backward("
                     f"dout, x, w, b, stride={s}, padding={p})")
        lines.append(f"print({output}.shape == {output}_right.shape and "
                     f"np.allclose({output}, {output}_right))  # False")
    return "\n".join(lines)
