"""One shard's training step on a worker: a private copy of the model, run layer by layer,
pausing wherever the whole batch must be consulted.

The model is a chain of layers (nested Sequentials are flattened). Every layer but a
BatchNorm that uses batch statistics treats each sample on its own, so a shard runs
through it alone; at such a BatchNorm the shard stops and posts its partial sums
(:mod:`.sync_batchnorm`), and the client answers with the whole batch's. A step is

    start(template, parameters, modes, x, ...)  forward up to the first pause
    advance(state, answer)  (repeated)          forward ... loss ... backward, pause to pause
    gradients(state)                            this shard's parameter gradients

each a pure function of its inputs: if a worker dies, Dask recomputes what was lost from
them. (A state is changed in place by the next stage; a recomputed stage always starts
from a state that was itself recomputed or never passed on, so this is safe.)

Shapes: x (n, ...) and labels (n,) of one shard, n its samples; output (n, K).
"""
from __future__ import annotations

import copy

import numpy as np

from .. import nn
from ..nn.module import quiet_arithmetic
from . import sync_batchnorm

__all__ = ["BATCH_NORMS", "leaves", "is_synchronized", "ShardState", "start", "advance",
           "outbox", "gradients", "add"]

BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def leaves(model) -> list:
    """The layers of ``model`` in the order they run: Sequentials flattened."""
    if isinstance(model, nn.Sequential):
        return [leaf for layer in model for leaf in leaves(layer)]
    return [model]


def is_synchronized(layer) -> bool:
    """A layer that needs the whole batch: a BatchNorm using batch statistics."""
    return isinstance(layer, BATCH_NORMS) and sync_batchnorm.uses_batch_statistics(layer)


class ShardState:
    """Where one shard is in its step: the replica's layers, the activation or gradient in
    flight, what each paused BatchNorm saved, and the message for the client."""

    def __init__(self, model, loss_fn, x, labels, weight):
        self.model, self.layers, self.loss_fn = model, leaves(model), loss_fn
        self.labels, self.weight = labels, weight    # weight: this shard's share of the loss
        self.value = x                               # activation, then gradient
        self.position = 0                            # the next layer to run
        self.direction = "forward"
        self.saved = {}                              # position -> a BatchNorm's xhat, 1/std
        self.dxhat = None
        self.outbox = None                           # for the client: see _run


def start(template, state, modes, x, labels, weight) -> ShardState:
    """A private copy of the model with the client's parameters, buffers and modes, run
    forward.

    ``template`` is (model, loss function), sent to each worker once; ``state`` is
    (the arrays of model.parameters(), those of model.named_buffers()) for this step,
    shared read-only by the shards of a worker (layers never write into parameters, and a
    BatchNorm's running statistics are only written by its own training forward pass,
    which is never run here: :mod:`.sync_batchnorm` replaces it); ``modes`` each module's
    training flag; ``weight`` this shard's share of the batch's loss (n / N for a mean,
    1 for a sum).
    """
    model, loss_fn = template
    parameters, buffers = state
    memo = {}                        # copy the structure, not the template's numbers
    for p, data in zip(model.parameters(), parameters):
        memo[id(p.data)], memo[id(p.grad)] = data, np.zeros_like(data)
    for (_, old), new in zip(model.named_buffers(), buffers):
        memo[id(old)] = new
    model, loss_fn = copy.deepcopy(model, memo), copy.deepcopy(loss_fn)
    for module, training in zip(model.modules(), modes):
        module.training = training
    return _run(ShardState(model, loss_fn, x, labels, weight))


def advance(state: ShardState, answer) -> ShardState:
    """Resume at the paused BatchNorm with the whole batch's numbers, run to the next pause."""
    layer = state.layers[state.position]
    if state.direction == "forward":
        mean, var = answer
        state.value, state.saved[state.position] = sync_batchnorm.normalize(
            layer, state.value, mean, var)
        state.position += 1
    else:
        sums, m = answer
        state.value = sync_batchnorm.finish_backward(state.dxhat, state.saved[state.position],
                                                     sums, m)
        state.dxhat = None
        state.position -= 1
    return _run(state)


def _run(state: ShardState) -> ShardState:
    """Run layers until a pause or the end. The outbox then holds ('moments', ...) or
    ('sums', ...) for a paused BatchNorm, or ('done', loss share, output)."""
    layers = state.layers
    if state.direction == "forward":
        while state.position < len(layers):
            layer = layers[state.position]
            if is_synchronized(layer):
                state.outbox = ("moments", sync_batchnorm.local_moments(state.value))
                return state
            state.value = layer.forward(state.value)
            state.position += 1
        output = state.value                                            # (n, K)
        loss = state.loss_fn.forward(output, state.labels)
        state.output, state.loss = output, loss * state.weight
        state.value = state.loss_fn.backward(state.weight)              # d(share)/d output
        state.direction, state.position = "backward", len(layers) - 1
    while state.position >= 0:
        layer = layers[state.position]
        if is_synchronized(layer):
            state.dxhat, sums = sync_batchnorm.backward_sums(layer, state.value,
                                                             state.saved[state.position])
            state.outbox = ("sums", sums)
            return state
        state.value = layer.backward(state.value)
        state.position -= 1
    state.value = None
    state.outbox = ("done", state.loss, state.output)
    return state


def outbox(state: ShardState):
    """The small message a stage leaves for the client (the state itself stays put)."""
    return state.outbox


def gradients(state: ShardState) -> list:
    """This shard's share of every parameter's gradient, in model.parameters() order."""
    return [p.grad for p in state.model.parameters()]


@quiet_arithmetic
def add(first: list, second: list) -> list:
    """Two shards' gradients summed (a node of the tree reduction)."""
    return [a + b for a, b in zip(first, second)]
