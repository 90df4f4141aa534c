"""The base class of every layer: parameters, buffers, modes, repr, save and load.

A module is an object with ``forward(x) -> y`` and ``backward(dy) -> dx``. The forward
pass remembers what the backward pass needs; the backward pass returns the gradient with
respect to the input and *adds* the gradients of the module's parameters into their
``.grad`` (zero them first, as in PyTorch).

Parameters are the :class:`Parameter` attributes of a module, found in the order they were
assigned, then those of its sub-modules (attributes that are modules), recursively, with
dotted names: ``"weight"``, ``"0.bias"``, ``"block.1.weight"``. Buffers are arrays a
module updates itself (BatchNorm's running statistics): each class lists their attribute
names in ``_buffer_names``. Parameters and buffers together are the module's state, what
:meth:`Module.state_dict` returns, :meth:`Module.load_state_dict` copies back in (PyTorch's
semantics) and :func:`convgrad.nn.save` writes.

A module with parameters computes in their dtype: an input of another float dtype is a
TypeError naming both (as in PyTorch), an integer input (a uint8 image) is converted.
"""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping
from typing import Iterator

import numpy as np

from ..geometry import as_float_array, check_shape
from .parameter import Parameter

__all__ = ["Module", "IncompatibleKeys"]

IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = """What load_state_dict(strict=False) skipped: two lists of keys."""

# Layers compute with NaN and inf as PyTorch does (overflow gives inf, inf - inf gives
# NaN), silently: NumPy's warnings would only be noise. A decorator, safe across threads.
quiet_arithmetic = np.errstate(over="ignore", invalid="ignore", divide="ignore")


def _indent(text: str, spaces: int = 2) -> str:
    """Indent every line of ``text`` but the first."""
    lines = text.split("\n")
    return "\n".join(lines[:1] + [" " * spaces + line for line in lines[1:]])


class Module:
    """Base class: subclasses implement ``forward`` and ``backward``."""

    _buffer_names: tuple[str, ...] = ()
    training: bool = True        # also set per instance; a class default for subclasses
                                 # that forget super().__init__()

    def __init__(self) -> None:
        self.training = True

    # --- computation ------------------------------------------------------------------

    def forward(self, x):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dy):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, x):
        return self.forward(x)

    def _backward_parameters(self, dy) -> None:
        """The parameter gradients of ``backward(dy)`` when dx is not wanted (the first
        layer of a model: ``Sequential.backward(dy, input_grad=False)``). This default
        computes dx and drops it; layers whose dx costs real work (convolutions, Linear)
        skip it."""
        self.backward(dy)

    def _input(self, x) -> np.ndarray:
        """x as a float array in the dtype of the module's own parameters, if it has any.

        Integer arrays (uint8 images) and Python lists are converted to that dtype (for
        uint8 and float32 that is NumPy's promotion); an array of another float dtype is
        refused with a TypeError naming both dtypes, as PyTorch refuses it.
        """
        name = type(self).__name__
        source_kind = x.dtype.kind if isinstance(x, np.ndarray) else None
        x = as_float_array(x, f"{name}: x")
        dtype = self._parameter_dtype()
        if dtype is None or x.dtype == dtype:
            return x
        if source_kind is None or source_kind in "iu":
            return x.astype(dtype)
        raise TypeError(f"{name}: x has dtype {x.dtype} but the layer's parameters are "
                        f"{dtype}; convert the input (x.astype(np.{dtype})) or create the layer "
                        f"with dtype=np.{x.dtype} (a layer does not mix float dtypes, as in "
                        f"PyTorch)")

    def _parameter_dtype(self):
        """The dtype of the module's own first parameter, or None when it has none."""
        for value in vars(self).values():
            if isinstance(value, Parameter):
                return value.dtype
        return None

    def _grad(self, dy, shape) -> np.ndarray:
        """dy as a float array of exactly the forward output's shape."""
        return check_shape(dy, shape, f"{type(self).__name__}.backward", "dy",
                           "the forward output's shape")

    def _saved(self, value, what: str = "the input"):
        """A value saved by forward, or a clear error when backward comes first."""
        if value is None:
            raise RuntimeError(f"{type(self).__name__}.backward needs {what} of a forward "
                               f"call: call forward(x) first")
        return value

    # --- structure --------------------------------------------------------------------

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """(name, module) for the direct sub-modules, in assignment order."""
        for name, value in vars(self).items():
            if isinstance(value, Module):
                yield name, value

    def children(self) -> Iterator["Module"]:
        for _, child in self.named_children():
            yield child

    def modules(self) -> Iterator["Module"]:
        """This module and all its descendants, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """(dotted name, Parameter): this module's own, then its children's, recursively."""
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def parameters(self) -> list[Parameter]:
        """The trainable parameters, in the order of :meth:`named_parameters`."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix: str = "") -> Iterator[tuple[str, np.ndarray]]:
        """(dotted name, array) for the buffers (e.g. BatchNorm's running statistics)."""
        for name in self._buffer_names:
            value = getattr(self, name, None)
            if value is not None:
                yield prefix + name, value
        for name, child in self.named_children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        """Name -> live array for every parameter and buffer (the arrays saved to .npz).

        Per module, parameters then buffers, then the children (PyTorch's order and names).
        The arrays are the module's own, not copies: writing into them changes the model.
        """
        state = {}
        for name, value in vars(self).items():
            if isinstance(value, Parameter):
                state[prefix + name] = value.data
        for name in self._buffer_names:
            value = getattr(self, name, None)
            if value is not None:
                state[prefix + name] = value
        for name, child in self.named_children():
            state.update(child.state_dict(f"{prefix}{name}."))
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> IncompatibleKeys:
        """Copy the arrays of ``state_dict`` into the parameters and buffers (PyTorch's rules).

        Keys are the names of :meth:`state_dict` ("weight", "0.bias", ...); values are
        arrays of numbers (NumPy arrays, or anything np.asarray reads, such as CPU torch
        tensors), copied into the module's own arrays and cast to their dtypes.
        With ``strict=True`` every key must be there and no other; with ``strict=False``
        missing and unexpected keys are skipped. Shapes must match exactly in both cases.
        Everything is checked before anything is assigned: any problem raises a
        ValueError listing all of them, and the module is left unchanged.

        Returns ``IncompatibleKeys(missing_keys, unexpected_keys)``, as PyTorch does.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict expects a dict of arrays (as state_dict() "
                            f"returns), got {type(state_dict).__name__}")
        if not isinstance(strict, bool):
            raise TypeError(f"load_state_dict: strict must be True or False, got {strict!r}")
        expected = self.state_dict()
        missing = [key for key in expected if key not in state_dict]
        unexpected = [key for key in state_dict if key not in expected]
        problems, values = [], {}
        if strict and missing:
            problems.append("missing key(s): " + ", ".join(map(repr, missing)))
        if strict and unexpected:
            problems.append("unexpected key(s): " + ", ".join(map(repr, unexpected)))
        for key, target in expected.items():
            if key not in state_dict:
                continue
            try:
                value = np.asarray(state_dict[key])
            except (TypeError, ValueError) as error:
                problems.append(f"{key!r}: not an array ({error})")
                continue
            if value.dtype.kind not in "fiu":
                problems.append(f"{key!r}: dtype {value.dtype} is not a real number type "
                                f"(the module's is {target.dtype})")
            elif value.shape != target.shape:
                problems.append(f"size mismatch for {key!r}: the state has shape "
                                f"{value.shape}, the module {target.shape}")
            else:
                values[key] = value
        if problems:
            raise ValueError(f"error(s) in loading state_dict for {type(self).__name__} "
                             f"(nothing was loaded):\n  " + "\n  ".join(problems))
        for key, value in values.items():
            expected[key][...] = value                 # a copy, cast to the module's dtype
        return IncompatibleKeys(missing, unexpected)

    def num_parameters(self) -> int:
        """The number of trainable scalars."""
        return sum(p.size for p in self.parameters())

    # --- modes and gradients ----------------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        """Training mode (Dropout drops, BatchNorm uses batch statistics); returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(mode) expects a bool, got {mode!r}")
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode (Dropout is the identity, BatchNorm uses running statistics)."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Set every parameter's gradient to zero."""
        for p in self.parameters():
            p.zero_grad()

    # --- saving -----------------------------------------------------------------------

    def save(self, path, *, metadata=None) -> None:
        """Write the parameters and buffers to ``path`` (.npz); see :func:`convgrad.nn.save`."""
        from .serialization import save
        save(self, path, metadata=metadata)

    def load(self, path) -> dict:
        """Read the parameters and buffers from ``path``; see :func:`convgrad.nn.load`."""
        from .serialization import load
        return load(self, path)

    # --- printing ---------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The arguments shown between the parentheses of the repr (non-defaults only)."""
        return ""

    def __repr__(self) -> str:
        """``Name(extra)``, or PyTorch's multi-line form with one ``(name): child`` per line."""
        name, extra = type(self).__name__, self.extra_repr()
        children = [f"({key}): {_indent(repr(child))}" for key, child in self.named_children()]
        if not children:
            return f"{name}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{name}(\n  " + "\n  ".join(lines) + "\n)"
