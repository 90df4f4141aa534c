"""Arrays: what convgrad accepts as x, w, b, dy, and the names of their axes.

Every array argument passes through :func:`as_float_array` (float16/32/64 kept, integers
promoted with the floats they meet as NumPy does, float64 on their own, everything else
refused with an error naming the argument) and then a shape check; the layouts below are the ones the messages show.
"""
from __future__ import annotations

import numpy as np

__all__ = ["SUPPORTED_DTYPES", "LAYOUTS", "UNBATCHED_LAYOUTS", "WEIGHT_LAYOUTS", "AXES",
           "as_ndarray", "as_float_array", "as_float_arrays", "compute_dtype", "check_ndim",
           "check_batched", "check_input_ndim", "check_shape"]

SUPPORTED_DTYPES = (np.float16, np.float32, np.float64)
LAYOUTS = {1: "(N, C, L)", 2: "(N, C, H, W)", 3: "(N, C, D, H, W)"}
UNBATCHED_LAYOUTS = {1: "(C, L)", 2: "(C, H, W)", 3: "(C, D, H, W)"}
WEIGHT_LAYOUTS = {1: "(F, C/groups, K)", 2: "(F, C/groups, HH, WW)",
                  3: "(F, C/groups, KD, KH, KW)"}
AXES = {1: ("L",), 2: ("H", "W"), 3: ("D", "H", "W")}     # the spatial axes' letters


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


def as_float_array(a, name: str, promote_with=None) -> np.ndarray:
    """Turn ``a`` into a float ndarray without copying when it already is one.

    float16/float32/float64 are kept. Integer arrays (and Python ints) become floats by
    NumPy's promotion with ``promote_with`` (the float dtype of the arrays they meet: a
    uint8 image with float32 filters is computed in float32, an int64 one in float64), or
    float64 when there is none. Booleans, complex numbers, strings, objects, None,
    ragged lists and masked arrays are refused with a TypeError or ValueError naming the
    argument; array-likes are converted or refused as :func:`as_ndarray` says.
    """
    a = _as_real_array(a, name)
    if a.dtype.kind in "iu":
        return a.astype(np.float64 if promote_with is None
                        else np.result_type(a.dtype, promote_with))
    return a


def as_float_arrays(named, optional=()) -> list:
    """Several arrays that meet in one computation, e.g. ``{"x": x, "w": w, "b": b}``:
    floats kept, integers promoted with the floats among them as NumPy promotes them
    (float64 when all are integers). Entries named in ``optional`` may be None and stay
    None. Returns them in order."""
    arrays = [None if a is None and name in optional else _as_real_array(a, name)
              for name, a in named.items()]
    floats = [a.dtype for a in arrays if a is not None and a.dtype.kind == "f"]
    partner = np.result_type(*floats) if floats else None
    return [None if a is None else as_float_array(a, name, partner)
            for name, a in zip(named, arrays)]


def _as_real_array(a, name: str) -> np.ndarray:
    """``a`` as an ndarray of a supported float dtype or of integers (kept as they are)."""
    if a is None:
        raise TypeError(f"{name} must be an array of floats, got None")
    if isinstance(a, (str, bytes)):
        raise TypeError(f"{name} must be an array of floats, got a {type(a).__name__}: {a!r}")
    a = as_ndarray(a, name)
    kind = a.dtype.kind
    if kind in "iu":
        return a
    if kind == "f":
        if a.dtype.type not in SUPPORTED_DTYPES:
            raise TypeError(f"{name} has dtype {a.dtype}; supported: float16, float32, "
                            f"float64 (and integers, promoted with them as NumPy does)")
        return a
    what = {"b": "booleans", "c": "complex numbers", "O": "Python objects", "U": "strings",
            "S": "bytes", "V": "structured records", "M": "datetimes",
            "m": "timedeltas"}.get(kind, "not numbers")
    raise TypeError(f"{name} has dtype {a.dtype} ({what}); expected real numbers: float16, "
                    f"float32, float64, or integers (promoted with them as NumPy does)")


def compute_dtype(*dtypes) -> np.dtype:
    """NumPy's promotion of float dtypes or arrays (None skipped); float16 runs in float32."""
    dtype = np.result_type(*[d.dtype if isinstance(d, np.ndarray) else d
                             for d in dtypes if d is not None])
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def check_ndim(a: np.ndarray, name: str, nd: int, layout: str, op: str) -> None:
    """A ValueError unless ``a`` has ``nd`` spatial axes after its two leading ones."""
    if a.ndim != nd + 2:
        raise ValueError(f"{op}: {name} must be {nd + 2}-D {layout}, got a {a.ndim}-D array "
                         f"of shape {a.shape}")


def check_batched(x, nd: int, op: str, name: str = "x") -> np.ndarray:
    """``x`` as a float array of ndim nd + 2, (N, C, *spatial), for the APIs that take no
    unbatched input (cs231n's); other problems are left to the geometry's own checks."""
    x = as_float_array(x, f"{op}: {name}")
    check_ndim(x, name, nd, LAYOUTS[nd], op)
    return x


def check_input_ndim(a: np.ndarray, name: str, nd: int, op: str) -> bool:
    """True when ``a`` is unbatched (C, *spatial), False when batched; else an error."""
    if a.ndim == nd + 1:
        return True
    if a.ndim != nd + 2:
        raise ValueError(f"{op}: {name} must be {nd + 2}-D {LAYOUTS[nd]}, or {nd + 1}-D "
                         f"{UNBATCHED_LAYOUTS[nd]} without the batch axis, got a {a.ndim}-D "
                         f"array of shape {a.shape}")
    return False


def check_shape(a, shape, op: str, name: str, what: str = "shape",
                promote_with=None) -> np.ndarray:
    """``a`` as a float array of exactly ``shape``, or an error naming both shapes.

    Integers are promoted with ``promote_with`` as :func:`as_float_array` says."""
    a = as_float_array(a, f"{op}: {name}", promote_with)
    if a.shape != tuple(shape):
        raise ValueError(f"{op}: {name} must have {what} {tuple(shape)}, got {a.shape}")
    return a
