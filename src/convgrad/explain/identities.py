"""The gradient identities of docs/math.md, for one sample and one channel, step by step.

Each rule takes the spatial arrays of one case, x (*in), w (*k), dy (*out), and its
:class:`~convgrad.geometry.ConvGeometry`, and returns an :class:`Identity` holding every
intermediate array, so that the text, LaTeX and figure of ``convgrad explain`` can show
them. The arrays may hold SymPy symbols (object dtype) or numbers (float): the same code
serves the symbolic check and the numerical one.

* :func:`conv_identities`, the general rule (any stride, padding, dilation):

  - dx = the full correlation of dy, with s-1 zeros inserted between its entries and
    padded by kd-1-lo before and in+kd-1-outd-(kd-1-lo) after (negative crops), with
    rot180(w), at stride 1 and dilation d;
  - dw = x, padded by (lo, outd-in+kd-1-lo), correlated with dy acting as a kernel dilated
    by s, at stride d: stride and dilation trade places;
  - db = sum(dy).

* :func:`naive_identities`, the stride-1 recipe of the blog post: dy zero-padded by
  kd-1-pad, with no zeros inserted, correlated with rot180(w); dw = x correlated with dy,
  undilated. Right at stride 1 (symmetric padding), wrong at stride 2: it is kept so the
  check can be seen to fail.

The arrays are built with the reference engine's own helpers (:func:`convgrad.engine.reference.pad`,
:func:`~convgrad.engine.reference.dilate`, :func:`~convgrad.engine.reference.rot180`) and a small
correlation written here, an independent route from the symbolic differentiation of
:mod:`convgrad.explain.derivation`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import ConvGeometry
from ..engine.reference import dilate, pad, rot180

__all__ = ["Identity", "correlate", "conv_identities", "naive_identities",
           "transposed_identities", "RULES"]


@dataclass(frozen=True)
class Identity:
    """One rule applied to one case: every intermediate array, spatial axes only.

    Shapes, for in = x's size, k = w's, out = dy's, kd = d*(k-1)+1, outd = (out-1)*s+1
    (general rule; the naive rule has outd = out):

        dy_spread  (*outd)        dy with s-1 zeros between its entries
        dx_padding ((lo, hi),..)  the padding of dy_spread (negative = crop)
        dy_full    (*(in+kd-1))   dy_spread padded: the input of the full correlation
        w_rotated  (*k)           w rotated by 180 degrees
        dx         (*in)          dy_full correlated with w_rotated, stride 1, dilation d
        x_padding  ((lo, hi),..)  the padding of x for dw (negative = crop)
        x_padded   (*(outd+kd-1)) x padded (or cropped) for dw
        dw_stride  (per axis)     the correlation stride of dw: the dilation d
        dw_dilation (per axis)    the dilation of dy as dw's kernel: the stride s
        dw         (*k)           x_padded correlated with dy (dilated by s), stride d
        db         scalar         sum of dy
    """

    rule: str
    dy_spread: np.ndarray
    dx_padding: tuple
    dy_full: np.ndarray
    w_rotated: np.ndarray
    dx: np.ndarray
    x_padding: tuple
    x_padded: np.ndarray
    dw_stride: tuple
    dw_dilation: tuple
    dw: np.ndarray
    db: object


def _batch(a: np.ndarray) -> np.ndarray:
    """(*spatial) -> (1, 1, *spatial), the layout the reference helpers take."""
    return np.asarray(a)[None, None]


def correlate(a: np.ndarray, kernel: np.ndarray, stride, dilation, out_size=None) -> np.ndarray:
    """out[i...] = sum_k kernel[k...] * a[s*i + d*k ...], over spatial arrays.

    a (*n), kernel (*k) -> out (*out_size); out_size defaults to the largest that fits,
    floor((n - d*(k-1) - 1) / s) + 1 (0 when the kernel does not fit). Works on object
    arrays of SymPy expressions (zeros stay Python ints) and on float arrays alike.
    """
    a, kernel = np.asarray(a), np.asarray(kernel)
    if out_size is None:
        out_size = tuple(max((n - d * (k - 1) - 1) // s + 1, 0)
                         for n, k, s, d in zip(a.shape, kernel.shape, stride, dilation))
    out = np.zeros(out_size, dtype=np.result_type(a, kernel))
    for i in np.ndindex(*out_size):
        window = tuple(slice(s * o, s * o + d * (k - 1) + 1, d)
                       for o, s, d, k in zip(i, stride, dilation, kernel.shape))
        out[i] = np.sum(a[window] * kernel)
    return out


def _sum(a: np.ndarray):
    return np.sum(a) if a.size else 0


def conv_identities(x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                    geometry: ConvGeometry) -> Identity:
    """The general rule of docs/math.md: zero insertion + padding for dx, s and d swapped for dw.

    x (*in), w (*k), dy (*out) spatial arrays of one sample and one channel.
    """
    g = geometry
    dy_spread = dilate(_batch(dy), g.stride)[0, 0]                          # (*outd)
    dx_padding, x_padding = [], []
    for n, kd, (lo, _), od in zip(g.in_size, g.kernel_extent, g.padding, dy_spread.shape):
        before = kd - 1 - lo
        dx_padding.append((before, n + kd - 1 - od - before))
        x_padding.append((lo, od - n + kd - 1 - lo))
    dy_full = pad(_batch(dy_spread), dx_padding)[0, 0]                      # (*(in + kd - 1))
    w_rotated = rot180(_batch(w))[0, 0]                                     # (*k)
    dx = correlate(dy_full, w_rotated, (1,) * g.nd, g.dilation, g.in_size)  # (*in)
    x_padded = pad(_batch(x), x_padding)[0, 0]                              # (*(outd + kd - 1))
    dw = correlate(x_padded, dy, g.dilation, g.stride, g.kernel_size)       # (*k)
    return Identity("general rule (zero insertion + padding; stride and dilation swap)",
                    dy_spread, tuple(dx_padding), dy_full, w_rotated, dx, tuple(x_padding),
                    x_padded, g.dilation, g.stride, dw, _sum(dy))


def naive_identities(x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                     geometry: ConvGeometry) -> Identity:
    """The stride-1 recipe, applied whatever the stride: no zeros inserted into dy.

    dx = dy zero-padded by kd-1-pad on each side, correlated with rot180(w) (dilation d);
    dw = x zero-padded by pad, correlated with dy at stride d, dy undilated. The output
    sizes are whatever the correlations give: at stride > 1 they are not x's and w's.
    """
    g = geometry
    dx_padding = tuple((kd - 1 - lo, kd - 1 - hi)
                       for kd, (lo, hi) in zip(g.kernel_extent, g.padding))
    dy_full = pad(_batch(dy), dx_padding)[0, 0]
    w_rotated = rot180(_batch(w))[0, 0]
    dx = correlate(dy_full, w_rotated, (1,) * g.nd, g.dilation)
    x_padded = pad(_batch(x), g.padding)[0, 0]
    ones = (1,) * g.nd
    dw = correlate(x_padded, dy, g.dilation, ones)
    return Identity("stride-1 recipe (no zero insertion)", np.asarray(dy), dx_padding,
                    dy_full, w_rotated, dx, tuple(g.padding), x_padded, g.dilation, ones, dw,
                    _sum(dy))


def transposed_identities(x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                          geometry: ConvGeometry) -> Identity:
    """The gradients of a transposed convolution (docs/math.md#transposed-convolution-is-the-adjoint).

    x (*out), w (*k), dy (*in) for ``geometry``, the forward convolution the transposed one
    is the adjoint of. Its forward is the forward convolution's dx map, so its gradients
    are the primitive with the roles swapped once more:

    * dx = dy zero-padded by the forward padding, correlated with w at stride s and
      dilation d: a forward convolution;
    * dw = the forward convolution's dw with dy in the place of x and x in the place of dy;
    * db = sum(dy).

    The returned Identity holds :func:`conv_identities` of (dy, w, x): its ``dy_spread``,
    ``dy_full`` and ``w_rotated`` build the transposed forward pass (x spread, padded,
    correlated with rot180(w)); its ``dx`` is replaced by the forward correlation of dy.
    """
    g = geometry
    swapped = conv_identities(dy, w, x, g)
    dy_padded = pad(_batch(dy), g.padding)[0, 0]                            # (*padded)
    dx = correlate(dy_padded, w, g.stride, g.dilation, g.out_size)          # (*out)
    return Identity("transposed (dx: a forward convolution of dy; dw: roles of x and dy "
                    "swapped)", swapped.dy_spread, swapped.dx_padding, swapped.dy_full,
                    swapped.w_rotated, dx, swapped.x_padding, swapped.x_padded,
                    swapped.dw_stride, swapped.dw_dilation, swapped.dw, _sum(dy))


RULES = {"general": conv_identities, "naive": naive_identities,
         "transposed": transposed_identities}
