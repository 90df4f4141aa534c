"""The geometry of an N-d convolution: every argument normalized and validated, once.

Notation (docs/math.md#notation), for ``nd`` spatial axes:

    x  (N, C, *in_size)            input batch, e.g. (N, C, H, W)
    w  (F, C // G, *kernel_size)   filters, e.g. (F, C/G, HH, WW); G = groups
    b  (F,)                        optional bias
    y  (N, F, *out_size)           output; dy has the same shape

Every public function of convgrad passes its arguments through this module before any
work is done, so every error message lives here. Internally padding is always explicit
``(lo, hi)`` pairs per spatial axis; strings ('same', 'valid') never leave this module.

A transposed convolution is described by the geometry of the forward convolution it is
the adjoint of (see :func:`conv_transpose_geometry`): its input plays the role of ``y``
and its output the role of ``x``.

Unbatched inputs (x without its N axis, as PyTorch accepts them) are given the batch axis
here (N = 1) and the geometry records it (``unbatched``); the functions remove it again
from what they return. A padding mode other than 'zeros' (``padding_mode``) is checked
here against the input's size; :mod:`convgrad.padding` applies it.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ConvGeometry",
    "as_float_array",
    "as_ndarray",
    "check_algorithm",
    "check_avg_options",
    "check_batched",
    "check_flag",
    "check_grad_output",
    "check_groups",
    "check_padding_mode",
    "check_second_order",
    "check_shape",
    "conv_geometry",
    "conv_transpose_geometry",
    "PoolGeometry",
    "pool_geometry",
    "pool_output_size",
    "ntuple",
    "normalize_padding",
    "positive_int",
    "output_size",
    "same_padding",
]

ALGORITHMS = ("auto", "fast", "winograd", "reference")
PADDING_STRINGS = ("valid", "same")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
# names other libraries give these modes (NumPy's np.pad, SciPy, TensorFlow)
_MODE_SYNONYMS = {"constant": "zeros", "zero": "zeros", "edge": "replicate",
                  "nearest": "replicate", "wrap": "circular", "periodic": "circular",
                  "reflection": "reflect", "mirror": "reflect"}
SUPPORTED_DTYPES = (np.float16, np.float32, np.float64)
_LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
_UNBATCHED_LAYOUTS = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}
_WEIGHT_LAYOUTS = {1: "(F, C/groups, K)", 2: "(F, C/groups, HH, WW)", 3: "(F, C/groups, KD, KH, KW)"}
_AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}


@dataclass(frozen=True)
class ConvGeometry:
    """Everything about one convolution except the numbers in its arrays.

    ``padding`` holds ``(lo, hi)`` pairs per spatial axis. ``out_size`` is normally given by
    :func:`output_size`; a transposed convolution with ``output_padding >= stride`` (allowed
    when it is below the dilation, as in PyTorch) reads only the first ``out_size`` outputs
    of the forward convolution it is the adjoint of.
    """

    batch: int                       # N
    in_channels: int                 # C
    out_channels: int                # F
    groups: int                      # G
    in_size: tuple[int, ...]         # (H, W)
    kernel_size: tuple[int, ...]     # (HH, WW)
    stride: tuple[int, ...]          # (sh, sw)
    dilation: tuple[int, ...]        # (dh, dw)
    padding: tuple[tuple[int, int], ...]  # ((top, bottom), (left, right))
    out_size: tuple[int, ...]        # (H', W')
    dtype: np.dtype = np.dtype(np.float64)  # the dtype the arithmetic runs in
    padding_mode: str = "zeros"      # what the padding holds: zeros, or copies of x
    unbatched: bool = False          # x came without its N axis (N = 1 here)

    @property
    def nd(self) -> int:
        """Number of spatial axes."""
        return len(self.in_size)

    @property
    def kernel_extent(self) -> tuple[int, ...]:
        """Dilated kernel size per axis: d * (k - 1) + 1."""
        return tuple(d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation))

    @property
    def padded_size(self) -> tuple[int, ...]:
        """Spatial size of the zero-padded input."""
        return tuple(n + lo + hi for n, (lo, hi) in zip(self.in_size, self.padding))

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.batch, self.in_channels, *self.in_size)

    @property
    def w_shape(self) -> tuple[int, ...]:
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def y_shape(self) -> tuple[int, ...]:
        return (self.batch, self.out_channels, *self.out_size)


# ----------------------------------------------------------------------------------------
# Scalars and tuples


def _is_int(value) -> bool:
    """True for Python and NumPy integers, False for bool (a bool is not a size)."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def positive_int(value, name: str, what: str = "a positive int") -> int:
    if not _is_int(value):
        raise TypeError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    if value < 1:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def ntuple(value, n: int, name: str) -> tuple[int, ...]:
    """Normalize a stride or dilation: a positive int, or a sequence of ``n`` positive ints.

    >>> ntuple(2, 2, "stride")
    (2, 2)
    >>> ntuple((1, 3), 2, "stride")
    (1, 3)
    """
    allowed = f"a positive int or a tuple of {n} positive ints"
    if _is_int(value):
        if value < 1:
            raise ValueError(f"{name} must be {allowed}, got {value!r}")
        return (int(value),) * n
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(
                f"{name} has {len(value)} entries, {tuple(value)!r}; expected {allowed}"
            )
    else:
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    for item in value:
        if not _is_int(item):
            raise TypeError(f"{name} must be {allowed}, got {tuple(value)!r}: "
                            f"{item!r} is a {type(item).__name__}")
        if item < 1:
            raise ValueError(f"{name} must be {allowed}, got {tuple(value)!r}")
    return tuple(int(item) for item in value)


def _nonnegative(item, name: str, value, allowed: str) -> int:
    if not _is_int(item):
        raise TypeError(f"{name} must be {allowed}, got {value!r}: "
                        f"{item!r} is a {type(item).__name__}")
    if item < 0:
        raise ValueError(f"{name} must be {allowed}, got {value!r}: negative padding is not "
                         f"allowed (crop the input instead)")
    return int(item)


def normalize_padding(padding, n: int, name: str = "padding", *, strings: bool = True):
    """Normalize padding to ``(lo, hi)`` pairs per axis, or return 'same' / 'valid'.

    Accepts an int (all sides), a tuple of ``n`` ints (per axis, both sides), or a tuple of
    ``n`` entries each an int or a ``(lo, hi)`` pair. Strings are resolved later by
    :func:`same_padding`, which needs the input size.
    """
    allowed = (f"a non-negative int, a tuple of {n} non-negative ints, or a tuple of {n} "
               f"(lo, hi) pairs" + (", or 'same' or 'valid'" if strings else ""))
    if isinstance(padding, str):
        if not strings:
            raise ValueError(f"{name}={padding!r} is not supported here; expected {allowed}")
        if padding in PADDING_STRINGS:
            return padding
        hint = (f" (padding strings are lower case: did you mean {padding.lower()!r}?)"
                if padding.lower() in PADDING_STRINGS else "")
        raise ValueError(f"{name}={padding!r} is not a known padding string; expected "
                         f"'same' or 'valid'{hint}")
    if _is_int(padding):
        p = _nonnegative(padding, name, padding, allowed)
        return ((p, p),) * n
    if not isinstance(padding, (tuple, list)):
        raise TypeError(f"{name} must be {allowed}, got {padding!r} "
                        f"({type(padding).__name__})")
    if len(padding) != n:
        extra = ""
        if n == 1 and len(padding) == 2 and all(_is_int(p) for p in padding):
            extra = f"; for asymmetric padding write (({padding[0]}, {padding[1]}),)"
        raise ValueError(f"{name} has {len(padding)} entries, {tuple(padding)!r}; expected "
                         f"{allowed}{extra}")
    pairs = []
    for item in padding:
        if isinstance(item, (tuple, list)):
            if len(item) != 2:
                raise ValueError(f"{name} must be {allowed}, got {tuple(padding)!r}: "
                                 f"{tuple(item)!r} is not a (lo, hi) pair")
            pairs.append(tuple(_nonnegative(p, name, tuple(padding), allowed) for p in item))
        else:
            p = _nonnegative(item, name, tuple(padding), allowed)
            pairs.append((p, p))
    return tuple(pairs)


def same_padding(in_size, kernel_size, stride, dilation):
    """'same' padding: output = ceil(in / stride), the odd pixel after (TF/JAX/ONNX SAME_UPPER).

    At stride 1 this is PyTorch's padding='same'.
    """
    pairs = []
    for n, k, s, d in zip(in_size, kernel_size, stride, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        pairs.append((total // 2, total - total // 2))
    return tuple(pairs)


def output_size(in_size: int, kernel_size: int, stride: int, dilation: int,
                pad_lo: int, pad_hi: int) -> int:
    """H' = floor((H + p_lo + p_hi - d*(k - 1) - 1) / s) + 1: the one output-size formula.

    May be < 1 for impossible geometries; :func:`conv_geometry` turns that into an error.
    """
    return (in_size + pad_lo + pad_hi - dilation * (kernel_size - 1) - 1) // stride + 1


def check_algorithm(algorithm, op: str = "conv") -> str:
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"{op}: algorithm={algorithm!r} is not known; expected one of "
                         f"{', '.join(repr(a) for a in ALGORITHMS)}")
    return algorithm


def check_padding_mode(padding_mode, op: str = "conv", *, transposed: bool = False) -> str:
    """'zeros', 'reflect', 'replicate' or 'circular' (PyTorch's padding_mode), or an error.

    A transposed convolution accepts 'zeros' only, as in PyTorch: its padding crops the
    output instead of extending the input, so there is nothing for a mode to fill.
    """
    allowed = ", ".join(repr(m) for m in PADDING_MODES)
    if not isinstance(padding_mode, str):
        raise TypeError(f"{op}: padding_mode must be one of {allowed}, got {padding_mode!r} "
                        f"({type(padding_mode).__name__})")
    if padding_mode not in PADDING_MODES:
        known = _MODE_SYNONYMS.get(padding_mode.lower(), padding_mode.lower())
        hint = f" (did you mean {known!r}?)" if known in PADDING_MODES else ""
        raise ValueError(f"{op}: padding_mode={padding_mode!r} is not known; expected one of "
                         f"{allowed}{hint}")
    if transposed and padding_mode != "zeros":
        raise ValueError(f"{op}: padding_mode={padding_mode!r} is not supported by a transposed "
                         f"convolution, only 'zeros' is (as in PyTorch): its padding crops the "
                         f"output, there is no input border for a mode to fill")
    return padding_mode


def _check_mode_fits(op: str, nd: int, in_size, padding, mode: str, x_name: str = "x"):
    """PyTorch's limits: reflect needs padding < size, circular padding <= size, per side.

    A reflection mirrors x about its edge entry, which is not repeated, so it can add at
    most size - 1 entries; a circular padding may wrap around at most once.
    """
    if mode not in ("reflect", "circular"):
        return
    for axis, n, (lo, hi) in zip(_AXES[nd], in_size, padding):
        limit = n - 1 if mode == "reflect" else n
        if max(lo, hi) > limit:
            rule = "smaller than" if mode == "reflect" else "at most"
            raise ValueError(
                f"{op}: padding ({lo}, {hi}) along {axis} is too large for "
                f"padding_mode={mode!r}: {x_name} has size {n} along {axis}, and {mode} "
                f"padding must be {rule} the size, so at most {limit} per side; use less "
                f"padding, a larger input, or padding_mode='replicate' or 'zeros'")


# ----------------------------------------------------------------------------------------
# Arrays


def _type_name(a) -> str:
    """'torch.Tensor', 'numpy.ma.MaskedArray', 'list': the type as its users know it."""
    cls = type(a)
    module = cls.__module__.split(".")[0]
    if module == "builtins":
        return cls.__qualname__
    if isinstance(a, np.ma.MaskedArray):
        return "numpy.ma.MaskedArray"
    return f"{module}.{cls.__qualname__}"


def as_ndarray(a, name: str) -> np.ndarray:
    """``a`` as a plain ndarray, never copied when it already is one.

    Masked arrays are refused (TypeError): their mask would be silently ignored. Other
    ndarray subclasses are viewed as ndarrays. Anything else is given to ``np.asarray``:
    lists, scalars and array-likes it converts (CPU PyTorch tensors that do not require
    grad, array.array, memoryview) are accepted as NumPy reads them; an object it cannot
    convert (a tensor that requires grad, a GPU tensor, bfloat16) is refused with a
    TypeError naming its type, never the foreign library's own error. A ragged nested list
    is a ValueError.
    """
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} is a masked array (numpy.ma.MaskedArray); convgrad would "
                        f"ignore its mask. Pass {name.split(': ')[-1]}.filled(value) to "
                        f"choose what masked entries hold, or np.asarray() to drop the mask")
    if isinstance(a, np.ndarray):
        return a if type(a) is np.ndarray else a.view(np.ndarray)
    try:
        return np.asarray(a)
    except Exception as error:  # noqa: BLE001 - a foreign library's own exception types
        if isinstance(a, (list, tuple)) and isinstance(error, (ValueError, TypeError)):
            raise ValueError(f"{name} could not be read as an array of floats (ragged or "
                             f"mixed nesting?): {error}") from None
        hint = ""
        if type(a).__module__.split(".")[0] == "torch":
            hint = f"; pass a NumPy array, e.g. {name.split(': ')[-1]}.detach().cpu().numpy()"
        first_line = (str(error).splitlines() or [""])[0][:200]
        raise TypeError(f"{name} is a {_type_name(a)}, which NumPy cannot convert to an "
                        f"array ({type(error).__name__}: {first_line}){hint}") from None


def as_float_array(a, name: str) -> np.ndarray:
    """Turn ``a`` into a float ndarray without copying when it already is one.

    float16/float32/float64 are kept. Integer arrays (and Python ints) are computed in
    float64, as NumPy promotes them. Booleans, complex numbers, strings, objects, None,
    ragged lists and masked arrays are refused with a TypeError or ValueError naming the
    argument; array-likes are converted or refused as :func:`as_ndarray` says.
    """
    if a is None:
        raise TypeError(f"{name} must be an array of floats, got None")
    if isinstance(a, (str, bytes)):
        raise TypeError(f"{name} must be an array of floats, got a {type(a).__name__}: {a!r}")
    a = as_ndarray(a, name)
    kind = a.dtype.kind
    if kind in "iu":
        return a.astype(np.float64)
    if kind == "f":
        if a.dtype.type not in SUPPORTED_DTYPES:
            raise TypeError(f"{name} has dtype {a.dtype}; supported: float16, float32, "
                            f"float64 (and integers, computed in float64)")
        return a
    what = {"b": "booleans", "c": "complex numbers", "O": "Python objects", "U": "strings",
            "S": "bytes", "V": "structured records", "M": "datetimes",
            "m": "timedeltas"}.get(kind, "not numbers")
    raise TypeError(f"{name} has dtype {a.dtype} ({what}); expected real numbers: float16, "
                    f"float32, float64, or integers (computed in float64)")


def _compute_dtype(*dtypes) -> np.dtype:
    """NumPy's promotion of float dtypes (None skipped); float16 arithmetic runs in float32."""
    dtype = np.result_type(*[d.dtype if isinstance(d, np.ndarray) else d
                             for d in dtypes if d is not None])
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _check_ndim(a: np.ndarray, name: str, nd: int, layout: str, op: str) -> None:
    if a.ndim != nd + 2:
        raise ValueError(f"{op}: {name} must be {nd + 2}-D {layout}, got a {a.ndim}-D array "
                         f"of shape {a.shape}")


def check_batched(x, nd: int, op: str, name: str = "x") -> np.ndarray:
    """``x`` as a float array of ndim nd + 2, (N, C, *spatial), for the APIs that take no
    unbatched input (cs231n's); other problems are left to the geometry's own checks."""
    x = as_float_array(x, f"{op}: {name}")
    if x.ndim != nd + 2:
        raise ValueError(f"{op}: {name} must be {nd + 2}-D {_LAYOUTS[nd]}, got a {x.ndim}-D "
                         f"array of shape {x.shape}")
    return x


def _check_input_ndim(a: np.ndarray, name: str, nd: int, op: str) -> bool:
    """True when ``a`` is unbatched (C, *spatial), False when batched; else an error."""
    if a.ndim == nd + 1:
        return True
    if a.ndim != nd + 2:
        raise ValueError(f"{op}: {name} must be {nd + 2}-D {_LAYOUTS[nd]}, or {nd + 1}-D "
                         f"{_UNBATCHED_LAYOUTS[nd]} without the batch axis, got a {a.ndim}-D "
                         f"array of shape {a.shape}")
    return False


def _check_batch_arrays(op: str, nd: int, x, w, b, x_name="x"):
    """x (batched or not), w and b as float arrays; x comes back batched, with the flag."""
    x = as_float_array(x, f"{op}: {x_name}")
    w = as_float_array(w, f"{op}: w")
    b = None if b is None else as_float_array(b, f"{op}: b")
    unbatched = _check_input_ndim(x, x_name, nd, op)
    _check_ndim(w, "w", nd, _WEIGHT_LAYOUTS[nd], op)
    channels, spatial = x.shape[-nd - 1], x.shape[-nd:]
    if channels == 0:
        raise ValueError(f"{op}: {x_name} of shape {x.shape} has no channels (C = 0); "
                         f"expected at least 1 channel")
    zero = [ax for ax, n in zip(_AXES[nd], spatial) if n == 0]
    if zero:
        raise ValueError(f"{op}: {x_name} of shape {x.shape} has empty spatial axes "
                         f"({', '.join(zero)}); every spatial size must be at least 1")
    zero = [ax for ax, n in zip(_AXES[nd], w.shape[2:]) if n == 0]
    if zero:
        raise ValueError(f"{op}: w of shape {w.shape} has an empty kernel "
                         f"({', '.join(zero)}); every kernel size must be at least 1")
    if unbatched:
        x = x[None]                                            # (1, C, *in), a view
    return x, w, b, unbatched


def check_groups(op, groups, channels, channels_name, filters, filters_name):
    groups = positive_int(groups, f"{op}: groups")
    if channels % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {channels_name} "
                         f"({channels}); choose groups among the divisors of {channels}")
    if filters % groups:
        raise ValueError(f"{op}: groups={groups} must divide the {filters_name} "
                         f"({filters}); choose groups among the divisors of {filters}")
    return groups


def _check_bias(op: str, b, n: int, what: str):
    if b is not None and b.shape != (n,):
        raise ValueError(f"{op}: b must have shape ({n},), one value per {what}, "
                         f"got shape {b.shape}")


def _check_fits(op, nd, in_size, kernel, dilation, padding, stride, x_name="x"):
    out = []
    for axis, n, k, d, (lo, hi), s in zip(_AXES[nd], in_size, kernel, dilation, padding,
                                          stride):
        size = output_size(n, k, s, d, lo, hi)
        if size < 1:
            extent = d * (k - 1) + 1
            raise ValueError(
                f"{op}: the kernel along {axis} (size {k}, dilation {d}: effective size "
                f"{extent}) is larger than the padded input ({n} + {lo} + {hi} = "
                f"{n + lo + hi}); pad {x_name} by at least {extent - n - lo - hi} more, or "
                f"use a smaller kernel or dilation")
        out.append(size)
    return tuple(out)


def conv_geometry(x, w, b=None, *, nd: int, stride=1, padding=0, dilation=1, groups=1,
                  padding_mode="zeros", op: str = "conv"):
    """Validate a convolution's arguments; return ``(x, w, b, geometry)``.

    The arrays come back as float ndarrays (integers converted to float64, never copied
    otherwise); an unbatched x (C, *in) comes back as a (1, C, *in) view. Raises
    ValueError or TypeError naming the bad value, before any work.
    """
    padding_mode = check_padding_mode(padding_mode, op)
    x, w, b, unbatched = _check_batch_arrays(op, nd, x, w, b)
    stride = ntuple(stride, nd, f"{op}: stride")
    dilation = ntuple(dilation, nd, f"{op}: dilation")
    padding = normalize_padding(padding, nd, f"{op}: padding")
    n, c = x.shape[:2]
    f, cg = w.shape[:2]
    if f == 0:
        raise ValueError(f"{op}: w of shape {w.shape} has no filters (F = 0); expected F >= 1")
    groups = check_groups(op, groups, c, "input channels C", f, "number of filters F")
    if cg * groups != c:
        raise ValueError(
            f"{op}: x has C={c} channels but w of shape {w.shape} expects w.shape[1] x groups "
            f"= {cg} x {groups} = {cg * groups}; w.shape[1] must be C / groups = {c // groups}")
    _check_bias(op, b, f, "filter (F)")
    in_size, kernel = tuple(x.shape[2:]), tuple(w.shape[2:])
    if padding == "valid":
        padding = ((0, 0),) * nd
    elif padding == "same":
        padding = same_padding(in_size, kernel, stride, dilation)
    out = _check_fits(op, nd, in_size, kernel, dilation, padding, stride)
    _check_mode_fits(op, nd, in_size, padding, padding_mode)
    geometry = ConvGeometry(n, c, f, groups, in_size, kernel, stride, dilation, padding, out,
                            _compute_dtype(x, w, b), padding_mode, unbatched)
    return x, w, b, geometry


def conv_transpose_geometry(x, w, b=None, *, nd: int, stride=1, padding=0,
                            output_padding=0, groups=1, dilation=1, op: str = "conv_transpose"):
    """Validate a transposed convolution's arguments; return ``(x, w, b, geometry)``.

    PyTorch's layout: x (N, C_in, *in), w (C_in, C_out / groups, *kernel), b (C_out,), and
    output size (in - 1) * s - lo - hi + d * (k - 1) + output_padding + 1. The geometry
    returned is that of the forward convolution whose input gradient this is: its ``x`` is
    the transposed output (C = C_out channels) and its ``y`` the transposed input
    (F = C_in channels), with the same weight array.

    padding may also be 'valid' (none) or 'same' (output = in * stride, as TensorFlow's
    conv2d_transpose); with 'same', output_padding is chosen by the geometry and must be 0.
    """
    x, w, b, unbatched = _check_batch_arrays(op, nd, x, w, b)
    stride = ntuple(stride, nd, f"{op}: stride")
    dilation = ntuple(dilation, nd, f"{op}: dilation")
    padding = normalize_padding(padding, nd, f"{op}: padding")
    output_padding = normalize_padding(output_padding, nd, f"{op}: output_padding",
                                       strings=False)
    if any(lo != hi for lo, hi in output_padding):
        raise ValueError(f"{op}: output_padding must be one non-negative int per axis, got "
                         f"{output_padding!r}")
    output_padding = tuple(lo for lo, _ in output_padding)
    n, c_in = x.shape[:2]
    if w.shape[0] != c_in:
        raise ValueError(f"{op}: x has C_in={c_in} channels but w of shape {w.shape} has "
                         f"w.shape[0]={w.shape[0]}; the weight layout is (C_in, C_out/groups, "
                         f"*kernel) and w.shape[0] must equal C_in")
    if w.shape[1] == 0:
        raise ValueError(f"{op}: w of shape {w.shape} gives no output channels "
                         f"(C_out/groups = 0); expected w.shape[1] >= 1")
    groups = check_groups(op, groups, c_in, "input channels C_in", c_in,
                           "input channels C_in")
    c_out = w.shape[1] * groups
    _check_bias(op, b, c_out, "output channel (C_out = w.shape[1] x groups)")
    in_size, kernel = tuple(x.shape[2:]), tuple(w.shape[2:])
    if isinstance(padding, str):
        if any(output_padding):
            raise ValueError(f"{op}: output_padding={output_padding!r} cannot be combined "
                             f"with padding={padding!r}, which sets the output size itself; "
                             f"use output_padding=0")
        if padding == "valid":
            padding = ((0, 0),) * nd
        else:
            out_size = tuple(i * s for i, s in zip(in_size, stride))
            padding = same_padding(out_size, kernel, stride, dilation)
            output_padding = tuple(
                o - ((i - 1) * s - lo - hi + d * (k - 1) + 1)
                for o, i, s, (lo, hi), d, k in zip(out_size, in_size, stride, padding,
                                                    dilation, kernel))
    for axis, extra, s, d in zip(_AXES[nd], output_padding, stride, dilation):
        if extra >= max(s, d):
            raise ValueError(f"{op}: output_padding={extra} along {axis} must be smaller than "
                             f"either the stride ({s}) or the dilation ({d})")
    out_size = []
    for axis, i, k, s, d, (lo, hi), extra in zip(_AXES[nd], in_size, kernel, stride,
                                                  dilation, padding, output_padding):
        size = (i - 1) * s - lo - hi + d * (k - 1) + extra + 1
        if size < 1:
            raise ValueError(
                f"{op}: the output along {axis} would have size {size} = ({i} - 1) x {s} - "
                f"{lo} - {hi} + {d} x ({k} - 1) + {extra} + 1; the padding (it crops the "
                f"output) must be at most {(i - 1) * s + d * (k - 1) + extra} in total")
        out_size.append(size)
    geometry = ConvGeometry(n, c_out, c_in, groups, tuple(out_size), kernel, stride,
                            dilation, padding, in_size, _compute_dtype(x, w, b),
                            unbatched=unbatched)
    return x, w, b, geometry


# ----------------------------------------------------------------------------------------
# Pooling


@dataclass(frozen=True)
class PoolGeometry:
    """Everything about one pooling window except the numbers in its arrays.

    A pooling layer slides one window over every channel separately (a depthwise window):
    x (N, C, *in_size) -> y (N, C, *out_size). ``padding`` holds the declared ``(lo, hi)``
    pairs; with ``ceil_mode`` the last window may also hang past the high padding, which
    :attr:`reach` accounts for. ``unbatched`` records that the caller gave x as
    (C, *in_size); the shapes below are always batched.
    """

    batch: int                       # N
    channels: int                    # C
    in_size: tuple[int, ...]         # (H, W)
    kernel_size: tuple[int, ...]     # (HH, WW)
    stride: tuple[int, ...]          # (sh, sw)
    dilation: tuple[int, ...]        # (dh, dw)
    padding: tuple[tuple[int, int], ...]  # ((top, bottom), (left, right))
    out_size: tuple[int, ...]        # (H', W')
    ceil_mode: bool = False
    unbatched: bool = False
    dtype: np.dtype = np.dtype(np.float64)  # the dtype the arithmetic runs in

    @property
    def nd(self) -> int:
        return len(self.in_size)

    @property
    def x_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels, *self.in_size)

    @property
    def y_shape(self) -> tuple[int, ...]:
        return (self.batch, self.channels, *self.out_size)

    @property
    def window_count(self) -> int:
        """Positions in one window: prod(kernel_size)."""
        return int(np.prod(self.kernel_size))

    @property
    def reach(self) -> tuple[int, ...]:
        """Per axis, the extent of the padded input the windows read: (o - 1) s + d (k - 1) + 1."""
        return tuple((o - 1) * s + d * (k - 1) + 1 for o, s, d, k in
                     zip(self.out_size, self.stride, self.dilation, self.kernel_size))


def pool_output_size(in_size: int, kernel_size: int, stride: int, dilation: int,
                     pad_lo: int, pad_hi: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size.

    floor (or ceil, with ``ceil_mode``) of (H + lo + hi - d (k - 1) - 1) / s, plus 1; in
    ceil mode the last window must start inside the input or the low padding, so a window
    that would start in the high padding is dropped.
    """
    span = in_size + pad_lo + pad_hi - dilation * (kernel_size - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if out > 1 and (out - 1) * stride >= in_size + pad_lo:
        out -= 1
    return out


def check_flag(value, op: str, name: str) -> bool:
    """A pooling switch (ceil_mode, count_include_pad, return_indices): a bool, no stand-ins."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r} "
                        f"({type(value).__name__})")
    return bool(value)


def check_avg_options(count_include_pad, divisor_override, op: str):
    """Average pooling's own options; returns them normalized."""
    count_include_pad = check_flag(count_include_pad, op, "count_include_pad")
    if divisor_override is not None:
        divisor_override = positive_int(divisor_override, f"{op}: divisor_override",
                                        "None or a positive int")
    return count_include_pad, divisor_override


def pool_geometry(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, *,
                  nd: int, op: str = "pool", batched_only: bool = False):
    """Validate a pooling window; return ``(x, geometry)`` with x batched (N, C, *in).

    x is (N, C, *in) or, unless ``batched_only``, unbatched (C, *in) as PyTorch accepts
    (then x comes back with a batch axis of 1 and ``geometry.unbatched`` set). ``stride``
    defaults to ``kernel_size``; padding (int, per axis, or (lo, hi) pairs) may be at most
    half the window, as in PyTorch; ``ceil_mode`` rounds the output size up as PyTorch
    does. Every window must read at least one input value (only a dilated window over a
    tiny input can miss it; PyTorch then returns -inf with an out-of-range index).
    """
    x = as_float_array(x, f"{op}: x")
    layout = _LAYOUTS[nd]
    unbatched = not batched_only and x.ndim == nd + 1
    if not unbatched and x.ndim != nd + 2:
        unbatched_layout = "(C, " + layout[len("(N, C, "):]     # (C, H, W)
        also = "" if batched_only else f" or {nd + 1}-D {unbatched_layout}"
        raise ValueError(f"{op}: x must be {nd + 2}-D {layout}{also}, got a {x.ndim}-D array "
                         f"of shape {x.shape}")
    if 0 in x.shape[int(not unbatched):]:
        raise ValueError(f"{op}: x of shape {x.shape} has an empty channel or spatial axis; "
                         f"every size except N must be at least 1")
    if unbatched:
        x = x[np.newaxis]
    kernel = ntuple(kernel_size, nd, f"{op}: kernel_size")
    stride = kernel if stride is None else ntuple(stride, nd, f"{op}: stride")
    dilation = ntuple(dilation, nd, f"{op}: dilation")
    padding = normalize_padding(padding, nd, f"{op}: padding", strings=False)
    ceil_mode = check_flag(ceil_mode, op, "ceil_mode")
    for axis, k, (lo, hi) in zip(_AXES[nd], kernel, padding):
        if max(lo, hi) > k // 2:
            raise ValueError(f"{op}: padding {(lo, hi)} along {axis} must be at most half the "
                             f"window ({k} // 2 = {k // 2})")
    out = []
    for axis, n, k, s, d, (lo, hi) in zip(_AXES[nd], x.shape[2:], kernel, stride, dilation,
                                          padding):
        size = pool_output_size(n, k, s, d, lo, hi, ceil_mode)
        extent = d * (k - 1) + 1
        if size < 1:
            raise ValueError(
                f"{op}: the window along {axis} (size {k}, dilation {d}: effective size "
                f"{extent}) is larger than the padded input ({n} + {lo} + {hi} = "
                f"{n + lo + hi}); use a smaller window or dilation, or more padding")
        # Only a window starting in the low padding can miss the input (every other one
        # starts inside it), and only when dilated.
        for o in range(-(-lo // s) if d > 1 else 0):
            start = o * s - lo            # the window's first position, in input coordinates
            if not any(0 <= start + j * d < n for j in range(k)):
                taps = ", ".join(str(start + j * d) for j in range(k))
                raise ValueError(
                    f"{op}: window {o} along {axis} reads only padding (positions {taps} of "
                    f"an input of size {n}, dilation {d}); use less padding or dilation")
        out.append(size)
    geometry = PoolGeometry(x.shape[0], x.shape[1], tuple(x.shape[2:]), kernel, stride,
                            dilation, padding, tuple(out), ceil_mode, unbatched,
                            _compute_dtype(x))
    return x, geometry


def check_shape(a, shape, op: str, name: str, what: str = "shape") -> np.ndarray:
    """``a`` as a float array of exactly ``shape``, or an error naming both shapes."""
    a = as_float_array(a, f"{op}: {name}")
    if a.shape != tuple(shape):
        raise ValueError(f"{op}: {name} must have {what} {tuple(shape)}, got {a.shape}")
    return a


def check_grad_output(dy, geometry: ConvGeometry, shape: tuple[int, ...], op: str,
                      name: str = "dy", what: str = "the output's shape"):
    """The upstream gradient: a float array of exactly the output's ``shape`` (batched).

    For an unbatched call ``dy`` comes without its N axis, which is added back (a view).
    Returns ``(dy, geometry)``, the geometry's arithmetic dtype promoted to include dy's.
    """
    if geometry.unbatched:
        dy = check_shape(dy, shape[1:], op, name, what)[None]
    else:
        dy = check_shape(dy, shape, op, name, what)
    dtype = _compute_dtype(geometry.dtype, dy.dtype)
    return dy, dataclasses.replace(geometry, dtype=dtype)


def check_second_order(g_dx, g_dw, g_db, geometry: ConvGeometry, dx_shape, w_shape, b,
                       op: str):
    """The gradients a double backward receives, one per output of the backward.

    ``g_dx`` has the shape of the backward's dx (``dx_shape`` batched; unbatched calls
    leave N out), ``g_dw`` that of w, ``g_db`` that of b; each may be None (zero), and
    ``g_db`` must be None when b is None (the backward returns no db then).
    Returns ``(g_dx, g_dw, g_db, geometry)``, the arithmetic dtype promoted to theirs.
    """
    if g_dx is not None:
        g_dx, geometry = check_grad_output(g_dx, geometry, dx_shape, op, "g_dx",
                                           "the shape of the backward's dx")
    if g_dw is not None:
        g_dw = check_shape(g_dw, w_shape, op, "g_dw", "the shape of w")
    if g_db is not None:
        if b is None:
            raise ValueError(f"{op}: g_db was given but b is None: without a bias the "
                             f"backward returns no db; pass g_db=None, or pass b")
        g_db = check_shape(g_db, b.shape, op, "g_db", "the shape of b")
    dtype = _compute_dtype(geometry.dtype, g_dx, g_dw, g_db)
    return g_dx, g_dw, g_db, dataclasses.replace(geometry, dtype=dtype)
