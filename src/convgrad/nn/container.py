"""Sequential: layers applied in order; the backward pass runs them in reverse."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """A chain of modules: y = layer_n(... layer_1(x)), dx = layer_1.backward(... dy).

    ``Sequential(a, b, c)`` names the layers "0", "1", "2" (so parameters are "0.weight",
    "0.bias", ...); ``Sequential(OrderedDict(conv=a, relu=b))`` uses the given names.
    Indexing gives a layer (``model[0]``) or, with a slice, a Sequential of some layers
    (sharing them); ``len``, iteration and ``append`` work as for a list.

    Shape:
        x: the first layer's input    y, dy: the last layer's output    dx: x's shape
    """

    def __init__(self, *layers) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            named = list(layers[0].items())
        else:
            named = [(str(i), layer) for i, layer in enumerate(layers)]
        self._layers: list[tuple[str, Module]] = []
        for name, layer in named:
            self._add(name, layer)

    def _add(self, name, layer) -> None:
        if not isinstance(layer, Module):
            raise TypeError(f"Sequential: layer {name!r} is not a convgrad.nn.Module: "
                            f"{layer!r} ({type(layer).__name__})")
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"Sequential: layer names must be non-empty strings without "
                             f"dots, got {name!r}")
        if any(name == existing for existing, _ in self._layers):
            raise ValueError(f"Sequential: two layers are named {name!r}")
        self._layers.append((name, layer))

    def append(self, layer: Module) -> "Sequential":
        """Add a layer at the end (named by its position); returns self."""
        self._add(str(len(self._layers)), layer)
        return self

    def named_children(self):
        yield from self._layers

    def __len__(self) -> int:
        return len(self._layers)

    def __iter__(self):
        return (layer for _, layer in self._layers)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(OrderedDict(self._layers[index]))
        return self._layers[index][1]

    def forward(self, x):
        for _, layer in self._layers:
            x = layer.forward(x)
        return x

    def backward(self, dy, input_grad: bool = True):
        """dx, from dy through every layer in reverse order.

        ``input_grad=False``: the gradient with respect to the model's input is not
        computed and None is returned (PyTorch skips it for an input that does not require
        grad): the first layer adds only its parameters' gradients. A training step wants
        this; the parameter gradients are the same.
        """
        if not isinstance(input_grad, (bool, np.bool_)):
            raise TypeError(f"Sequential.backward: input_grad must be True or False, got "
                            f"{input_grad!r}")
        layers = [layer for _, layer in self._layers]
        if not input_grad and layers:
            for layer in reversed(layers[1:]):
                dy = layer.backward(dy)
            layers[0]._backward_parameters(dy)
            return None
        for layer in reversed(layers):
            dy = layer.backward(dy)
        return dy

    def _backward_parameters(self, dy) -> None:
        self.backward(dy, input_grad=False)
