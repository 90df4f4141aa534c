"""Stanford cs231n's layer API, as a drop-in: ``from convgrad.cs231n import ...``.

The course's signatures and caches, on convgrad's engines:

* ``conv_forward_naive`` / ``conv_backward_naive`` use the reference loops and
  ``conv_forward_fast`` / ``conv_backward_fast`` the BLAS engine. Both are correct for
  every stride and padding (also when the stride does not divide the padded input
  evenly), need no Cython build, and share one cache format, so a naive cache can be fed
  to the fast backward and vice versa. ``conv_param`` holds 'stride' and 'pad' (int,
  per-axis tuple, (lo, hi) pairs, 'same' or 'valid') and optionally 'dilation' and 'groups'.
* max pooling, ReLU, affine, and the conv-relu / conv-relu-pool sandwiches of the
  course's layer_utils.
* ``eval_numerical_gradient``, ``eval_numerical_gradient_array`` and ``rel_error`` with the
  course's definitions (centered differences; x restored exactly afterwards).

Shapes: x (N, C, H, W), w (F, C, HH, WW), b (F,), out (N, F, H', W').
"""
from __future__ import annotations

import re

import numpy as np

from . import functional, pooling
from .geometry import as_float_array, check_batched, check_shape, pool_geometry
from .gradcheck import central_difference, numerical_gradient
from .gradcheck import rel_error as _rel_error

__all__ = [
    "conv_forward_naive", "conv_backward_naive", "conv_forward_fast", "conv_backward_fast",
    "max_pool_forward_naive", "max_pool_backward_naive",
    "max_pool_forward_fast", "max_pool_backward_fast",
    "relu_forward", "relu_backward", "affine_forward", "affine_backward",
    "conv_relu_forward", "conv_relu_backward",
    "conv_relu_pool_forward", "conv_relu_pool_backward",
    "eval_numerical_gradient", "eval_numerical_gradient_array", "rel_error",
]

_POOL_KEYS = ("pool_height", "pool_width", "stride")


def __dir__():
    """The course's names only (what ``from convgrad.cs231n import *`` gives, and what tab
    completion and dir() show), not the helpers this module imports from convgrad."""
    return sorted(__all__)


def _checked_param(param, name: str, required: tuple, optional: tuple = ()) -> dict:
    """The course's parameter dict, or an error naming the missing or unknown key."""
    allowed = ", ".join(map(repr, required + optional))
    if not isinstance(param, dict):
        raise TypeError(f"{name} must be a dict with the keys {allowed}, got "
                        f"{type(param).__name__}")
    for key in param:
        if key not in required + optional:
            import difflib
            match = difflib.get_close_matches(str(key), required + optional, n=1)
            hint = f" (did you mean {match[0]!r}?)" if match else ""
            raise ValueError(f"{name} has an unknown key {key!r}{hint}; allowed: {allowed}")
    for key in required:
        if key not in param:
            raise ValueError(f"{name} is missing the key {key!r}; it needs "
                             f"{', '.join(map(repr, required))}")
    return param


def _conv_keywords(conv_param) -> dict:
    """conv_param -> functional keywords ('stride', 'pad'; optionally 'dilation', 'groups')."""
    p = _checked_param(conv_param, "conv_param", ("stride", "pad"), ("dilation", "groups"))
    return dict(stride=p["stride"], padding=p["pad"], dilation=p.get("dilation", 1),
                groups=p.get("groups", 1))


# the core's words -> the course's: "conv2d: padding must ..." -> "conv_forward_naive:
# conv_param['pad'] must ...", "conv2d_backward: dy ..." -> "conv_backward_naive: dout ..."
_CORE_WORDS = re.compile(r"^conv2d(?:_backward)?: (padding|stride|dilation|groups|dy)\b")
_COURSE_WORDS = {"padding": "conv_param['pad']", "stride": "conv_param['stride']",
                 "dilation": "conv_param['dilation']", "groups": "conv_param['groups']",
                 "dy": "dout"}


def _in_course_words(error: Exception, function: str) -> Exception:
    """The same error, its message speaking of the course's names and ``function``."""
    message = _CORE_WORDS.sub(lambda m: f"{function}: {_COURSE_WORDS[m.group(1)]}", str(error))
    message = re.sub(r"^conv2d(?:_backward)?: ", f"{function}: ", message)
    return type(error)(message)


def _conv_forward(x, w, b, conv_param, algorithm, function):
    keywords = _conv_keywords(conv_param)
    check_batched(x, 2, function)                          # the course's x is (N, C, H, W)
    try:
        out = functional.conv2d(x, w, b, algorithm=algorithm, **keywords)
    except (ValueError, TypeError) as error:
        raise _in_course_words(error, function) from None
    return out, (x, w, b, conv_param)


def _conv_backward(dout, cache, algorithm, function):
    x, w, b, conv_param = _unpack(cache, 4, "conv")
    keywords = _conv_keywords(conv_param)
    check_batched(x, 2, function, "the cached x")
    try:
        return functional.conv2d_backward(dout, x, w, b, algorithm=algorithm, **keywords)
    except (ValueError, TypeError) as error:
        raise _in_course_words(error, function) from None


def _unpack(cache, n, what):
    if not isinstance(cache, tuple) or len(cache) != n:
        raise TypeError(f"cache must be the tuple returned by the matching {what} forward "
                        f"function, got {type(cache).__name__}")
    return cache


def conv_forward_naive(x, w, b, conv_param):
    """Convolution forward on the reference loops. Returns (out, cache)."""
    return _conv_forward(x, w, b, conv_param, "reference", "conv_forward_naive")


def conv_backward_naive(dout, cache):
    """Convolution backward on the reference loops. Returns (dx, dw, db)."""
    return _conv_backward(dout, cache, "reference", "conv_backward_naive")


def conv_forward_fast(x, w, b, conv_param):
    """Convolution forward on the BLAS engine; its cache also fits conv_backward_naive."""
    return _conv_forward(x, w, b, conv_param, "fast", "conv_forward_fast")


def conv_backward_fast(dout, cache):
    """Convolution backward on the BLAS engine; accepts naive caches too."""
    return _conv_backward(dout, cache, "fast", "conv_backward_fast")


# ----------------------------------------------------------------------------------------
# Max pooling


def _pool_keywords(pool_param) -> dict:
    p = _checked_param(pool_param, "pool_param", _POOL_KEYS)
    return dict(kernel_size=(p["pool_height"], p["pool_width"]), stride=p["stride"])


def _pool_cache(cache):
    """(x, pool_param, offsets or None) from a naive (x, pool_param) or fast cache."""
    if isinstance(cache, tuple) and len(cache) == 3:
        return cache
    x, pool_param = _unpack(cache, 2, "max_pool")
    return x, pool_param, None


def max_pool_forward_naive(x, pool_param):
    """Max pooling with loops over (n, c, i, j), as the course writes it. (out, cache)."""
    keywords = _pool_keywords(pool_param)
    x_arr, g = pool_geometry(x, nd=2, op="max_pool_forward_naive", batched_only=True,
                             **keywords)
    (ph, pw), (sh, sw) = g.kernel_size, g.stride
    out = np.empty(g.y_shape, dtype=x_arr.dtype)
    for n, c, i, j in np.ndindex(*g.y_shape):
        out[n, c, i, j] = x_arr[n, c, i * sh:i * sh + ph, j * sw:j * sw + pw].max()
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    """Each dout entry goes to the (first) maximum of its window. Returns dx."""
    x, pool_param, _ = _pool_cache(cache)
    keywords = _pool_keywords(pool_param)
    x_arr, g = pool_geometry(x, nd=2, op="max_pool_backward_naive", batched_only=True,
                             **keywords)
    dout = check_shape(dout, g.y_shape, "max_pool_backward_naive", "dout")
    (ph, pw), (sh, sw) = g.kernel_size, g.stride
    dx = np.zeros(x_arr.shape, dtype=np.result_type(x_arr, dout))
    for n, c, i, j in np.ndindex(*g.y_shape):
        window = x_arr[n, c, i * sh:i * sh + ph, j * sw:j * sw + pw]
        k, l = np.unravel_index(np.argmax(window), window.shape)
        dx[n, c, i * sh + k, j * sw + l] += dout[n, c, i, j]
    return dx


def max_pool_forward_fast(x, pool_param):
    """Vectorized max pooling (any sizes, no Cython). Returns (out, cache).

    The cache (x, pool_param, offsets) keeps where each maximum was, so the fast backward
    does not search again; it also fits max_pool_backward_naive.
    """
    keywords = _pool_keywords(pool_param)
    pool_geometry(x, nd=2, op="max_pool_forward_fast", batched_only=True, **keywords)
    out, offsets = pooling.max_pool_offsets(x, **keywords)
    return out, (x, pool_param, offsets)


def max_pool_backward_fast(dout, cache):
    """dx from a fast cache (maxima kept) or a naive one (maxima found again)."""
    x, pool_param, offsets = _pool_cache(cache)
    keywords = _pool_keywords(pool_param)
    pool_geometry(x, nd=2, op="max_pool_backward_fast", batched_only=True, **keywords)
    return pooling.max_pool2d_backward(dout, x, offsets=offsets, **keywords)


# ----------------------------------------------------------------------------------------
# ReLU, affine and the course's sandwich layers


def relu_forward(x):
    """out = max(0, x). Returns (out, cache)."""
    x = as_float_array(x, "relu_forward: x")
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """dx = dout where x > 0."""
    x = cache
    dout = check_shape(dout, np.shape(x), "relu_backward", "dout", "x's shape")
    dtype = np.result_type(x, dout)
    # A product is ~10x faster than np.where on a random mask; where 0 * Inf or 0 * NaN
    # would leak a NaN (one shows in the product), np.where gives the exact answer.
    with np.errstate(invalid="ignore"):
        dx = np.multiply(dout, np.greater(x, 0), dtype=dtype)
    if dx.size and np.isnan(dx.max()):
        dx = np.where(np.greater(x, 0), dout, 0).astype(dtype, copy=False)
    return dx


def affine_forward(x, w, b):
    """out = x.reshape(N, D) @ w + b, with x (N, d_1, ..., d_k), w (D, M), b (M,)."""
    x = as_float_array(x, "affine_forward: x")
    w = as_float_array(w, "affine_forward: w")
    b = as_float_array(b, "affine_forward: b")
    if x.ndim < 1:
        raise ValueError("affine_forward: x must have a batch axis, shape (N, d_1, ..., d_k), "
                         "got a 0-d array")
    n, d = x.shape[0], int(np.prod(x.shape[1:]))
    if w.ndim != 2 or w.shape[0] != d:
        raise ValueError(f"affine_forward: w must have shape (D, M) with D = {d} "
                         f"(x.shape[1:] = {x.shape[1:]} flattened), got {w.shape}")
    if b.shape != (w.shape[1],):
        raise ValueError(f"affine_forward: b must have shape ({w.shape[1]},), got {b.shape}")
    return x.reshape(n, d) @ w + b, (x, w, b)


def affine_backward(dout, cache):
    """Returns (dx, dw, db) with the shapes of x, w, b."""
    x, w, b = _unpack(cache, 3, "affine")
    dout = check_shape(dout, (x.shape[0], w.shape[1]), "affine_backward", "dout",
                       "shape (N, M)")
    x2 = x.reshape(x.shape[0], -1)                  # (N, D)
    dx = (dout @ w.T).reshape(x.shape)              # (N, d_1, ..., d_k)
    return dx, x2.T @ dout, dout.sum(axis=0)        # (D, M), (M,)


def conv_relu_forward(x, w, b, conv_param):
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout, cache):
    conv_cache, relu_cache = _unpack(cache, 2, "conv_relu")
    return conv_backward_fast(relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x, w, b, conv_param, pool_param):
    a, conv_cache = conv_forward_fast(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_fast(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout, cache):
    conv_cache, relu_cache, pool_cache = _unpack(cache, 3, "conv_relu_pool")
    ds = max_pool_backward_fast(dout, pool_cache)
    return conv_backward_fast(relu_backward(ds, relu_cache), conv_cache)


# ----------------------------------------------------------------------------------------
# Gradient checking, with the course's definitions


def _workspace(x: np.ndarray) -> np.ndarray:
    """x itself (perturbed in place, then restored), or a copy if x is read-only."""
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        what = x.dtype if isinstance(x, np.ndarray) else type(x).__name__
        raise TypeError(f"x must be a NumPy array of floats (a step of h is lost in integers), "
                        f"got {what}: pass x.astype(np.float64)")
    return x if x.flags.writeable else x.copy()


def eval_numerical_gradient(f, x, verbose=True, h=0.00001):
    """Centered-difference gradient of a scalar function f(x) at x.

    x is changed in place one entry at a time and restored exactly, even if f raises
    (a read-only x is left alone: a copy is perturbed instead). With verbose, prints each
    index and its gradient, as the course's version does.
    """
    work = _workspace(x)
    grad = np.zeros_like(work)
    for ix in np.ndindex(*work.shape):
        grad[ix] = central_difference(lambda: f(work), work, ix, h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(f, x, df, h=1e-5):
    """Centered-difference gradient of sum(f(x) * df) for an array-valued f."""
    work = _workspace(x)
    return numerical_gradient(lambda: f(work), work, np.asarray(df), h).astype(
        work.dtype, copy=False)


def rel_error(x, y):
    """max |x - y| / max(1e-8, |x| + |y|): the course's relative error."""
    return _rel_error(x, y)
