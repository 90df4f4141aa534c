"""Batch normalization over a batch split across workers: the statistics of the whole
batch, from per-shard partial sums, so that a sharded step equals the unsharded one.

Per channel, over the m values of the whole batch (all shards, all spatial positions),
the layer needs in its forward pass the batch's mean and (biased) variance, and in its
backward pass two means of the whole batch (nn/batchnorm.py gives the math):

    forward     xhat = (x - mean) / sqrt(var + eps),    y = weight * xhat + bias
    backward    dx = (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) / sqrt(var + eps)

Each shard sends (count, mean, sum of squared deviations) of its part, combined exactly
(Chan's parallel formula); in the backward pass each sends sum(dxhat) and
sum(dxhat * xhat). These are C numbers per shard and direction: the only traffic inside
a step besides one copy of the parameters out and one gradient in. The partial sums are
taken in float64; the arithmetic on the activations stays in their dtype, as in the
layer itself, and like it silent about overflow (inf and NaN propagate, no NumPy warning
reaches the workers' output). dweight and dbias are sums over samples: each shard adds its part into its
own gradients, which the step then sums like every other gradient.

Shapes: x, y, dy, dx (n, C, *spatial) on a shard, n its samples; mean, var, sums (C,).
"""
from __future__ import annotations

import numpy as np

from ..nn.module import quiet_arithmetic

__all__ = ["uses_batch_statistics", "local_moments", "combine_moments", "normalize",
           "backward_sums", "finish_backward", "update_running_stats"]


def uses_batch_statistics(layer) -> bool:
    """Whether a BatchNorm layer normalizes with the batch's statistics (training mode, or
    no running statistics): only then does it couple the samples of a batch."""
    return bool(layer.training or not layer.track_running_stats)


def _axes(x: np.ndarray) -> tuple[int, ...]:
    return (0, *range(2, x.ndim))                               # all but C


def _per_channel(x: np.ndarray) -> tuple[int, ...]:
    return (1, -1) + (1,) * (x.ndim - 2)                        # broadcast (C,) over x


@quiet_arithmetic           # NaN and inf as in the layer itself, silently
def local_moments(x: np.ndarray):
    """(count, mean (C,), sum of squared deviations (C,)) of one shard, in float64."""
    axes = _axes(x)
    x64 = x.astype(np.float64, copy=False)
    mean = x64.mean(axis=axes)                                  # (C,)
    squares = ((x64 - mean.reshape(_per_channel(x))) ** 2).sum(axis=axes)
    return x.size // x.shape[1], mean, squares


@quiet_arithmetic           # NaN and inf as in the layer itself, silently
def combine_moments(parts, layer_name: str = "BatchNorm"):
    """The whole batch's (count m, mean, biased var) from the shards' local moments."""
    counts = np.array([m for m, _, _ in parts], dtype=np.float64)            # (shards,)
    means = np.stack([mean for _, mean, _ in parts])                         # (shards, C)
    m = int(counts.sum())
    if m <= 1:
        raise ValueError(f"{layer_name}: training needs more than one value per channel, "
                         f"got {m} in the whole batch")
    mean = (counts[:, None] * means).sum(axis=0) / m                         # (C,)
    squares = (sum(s for _, _, s in parts)
               + (counts[:, None] * (means - mean) ** 2).sum(axis=0))
    return m, mean, squares / m


@quiet_arithmetic           # NaN and inf as in the layer itself, silently
def normalize(layer, x: np.ndarray, mean, var):
    """The layer's forward pass with the whole batch's statistics; returns (y, saved)."""
    shape = _per_channel(x)
    mean, var = mean.astype(x.dtype), var.astype(x.dtype)       # as the layer's own x.mean
    inv_std = 1.0 / np.sqrt(var + layer.eps)                    # (C,)
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    if not layer.affine:
        return xhat, (xhat, inv_std)
    return (xhat * layer.weight.data.reshape(shape) + layer.bias.data.reshape(shape),
            (xhat, inv_std))


@quiet_arithmetic           # NaN and inf as in the layer itself, silently
def backward_sums(layer, dy: np.ndarray, saved):
    """The local half of the backward pass: adds this shard's dweight and dbias into the
    layer's gradients; returns (dxhat, (sum dxhat, sum dxhat * xhat) in float64)."""
    xhat, _ = saved
    axes, shape = _axes(xhat), _per_channel(xhat)
    if layer.affine:
        layer.weight.grad += (dy * xhat).sum(axis=axes)
        layer.bias.grad += dy.sum(axis=axes)
        dxhat = dy * layer.weight.data.reshape(shape)
    else:
        dxhat = dy
    dxhat64 = dxhat.astype(np.float64, copy=False)
    return dxhat, (dxhat64.sum(axis=axes), (dxhat64 * xhat).sum(axis=axes))


@quiet_arithmetic           # NaN and inf as in the layer itself, silently
def finish_backward(dxhat: np.ndarray, saved, sums, m: int) -> np.ndarray:
    """dx from the whole batch's sums (summed over shards) and count m."""
    xhat, inv_std = saved
    shape = _per_channel(xhat)
    mean_dxhat = (sums[0] / m).astype(dxhat.dtype).reshape(shape)
    mean_dxhat_xhat = (sums[1] / m).astype(dxhat.dtype).reshape(shape)
    return (dxhat - mean_dxhat - xhat * mean_dxhat_xhat) * inv_std.reshape(shape)


@quiet_arithmetic           # NaN and inf as in the layer itself, silently
def update_running_stats(layer, mean, var, m: int) -> None:
    """Move the layer's running estimates as its own training forward pass would (on the
    client, once the whole step has succeeded)."""
    if layer.training and layer.track_running_stats:
        dtype = layer.running_mean.dtype
        layer._update_running_stats(mean.astype(dtype), var.astype(dtype), m)
