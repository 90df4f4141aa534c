"""The digits demo's figures: training curves, first-layer filters, test predictions.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no window, no global
backend change), so it works headless and inside notebooks alike.
"""
from __future__ import annotations

import os

import numpy as np

from .._optional import require

__all__ = ["write_figures", "training_curves", "first_layer_filters", "test_predictions"]


def _figure(width: float, height: float):
    figure_module = require("matplotlib.figure", "demo", "convgrad demo")
    agg = require("matplotlib.backends.backend_agg", "demo", "convgrad demo")
    figure = figure_module.Figure(figsize=(width, height), dpi=100)
    agg.FigureCanvasAgg(figure)
    return figure


def training_curves(path, metrics: dict):
    """Loss and accuracy per epoch, on the training batches and on the test split.

    Writes the figure to ``path`` and returns it; its epoch axes tick whole epochs only.
    """
    ticker = require("matplotlib.ticker", "demo", "convgrad demo")
    figure = _figure(9, 3.6)
    epochs = np.arange(1, len(metrics["epoch_train_loss"]) + 1)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    loss_axes.plot(epochs, metrics["epoch_train_loss"], "o-", label="train (during epoch)")
    loss_axes.plot(epochs, metrics["epoch_test_loss"], "s-", label="test")
    loss_axes.set(xlabel="epoch", ylabel="cross-entropy", yscale="log", title="loss")
    accuracy_axes.plot(epochs, metrics["epoch_train_accuracy"], "o-", label="train (during epoch)")
    accuracy_axes.plot(epochs, metrics["epoch_test_accuracy"], "s-", label="test")
    accuracy_axes.axhline(0.97, color="gray", lw=0.8, ls="--",
                          label="97%: the demo's target test accuracy")
    accuracy_axes.set(xlabel="epoch", ylabel="accuracy", title="accuracy",
                      ylim=(max(0.0, min(metrics["epoch_test_accuracy"]
                                         + metrics["epoch_train_accuracy"]) - 0.02), 1.005))
    for axes in (loss_axes, accuracy_axes):
        axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(f"digits CNN, {metrics['optimizer']} lr {metrics['lr']:g}, seed "
                    f"{metrics['seed']}: test accuracy {metrics['test_accuracy']:.2%}")
    figure.tight_layout()
    figure.savefig(path)
    return figure


def first_layer_filters(path, weight: np.ndarray) -> None:
    """The learned 3x3 filters of the first conv layer, one panel each.

    Shape:
        weight: (F, 1, HH, WW)
    """
    filters = np.asarray(weight, dtype=np.float64)[:, 0]               # (F, HH, WW)
    columns = 8
    rows = -(-len(filters) // columns)
    figure = _figure(columns * 1.1 + 1.0, rows * 1.1 + 0.5)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    bound = float(np.abs(filters).max()) or 1.0
    image = None
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i < len(filters):
            image = ax.imshow(filters[i], cmap="RdBu_r", vmin=-bound, vmax=bound)
    figure.suptitle("first-layer filters (red positive, blue negative)")
    figure.tight_layout(rect=(0, 0, 0.9, 1))
    if image is not None:                      # one shared scale: the weights' values
        colorbar_axes = figure.add_axes((0.91, 0.12, 0.02, 0.72))
        figure.colorbar(image, cax=colorbar_axes, label="weight")
    figure.savefig(path)


def test_predictions(path, images: np.ndarray, labels: np.ndarray,
                     probabilities: np.ndarray, shown: int = 24) -> None:
    """Test digits with the predicted class: the mistakes first (red), then correct ones.

    Shape:
        images: (N, 8, 8)    labels: (N,)    probabilities: (N, classes)
    """
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    right = np.flatnonzero(predicted == labels)
    order = np.concatenate([wrong[:shown // 3], right])[:shown]
    columns = 8
    rows = -(-len(order) // columns)
    figure = _figure(columns * 1.2, rows * 1.45 + 0.5)
    axes = np.atleast_1d(figure.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.set_axis_off()
    for ax, i in zip(axes, order):
        ok = predicted[i] == labels[i]
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=1)
        title = f"{predicted[i]} ({probabilities[i, predicted[i]]:.0%})"
        ax.set_title(title if ok else f"{title}\ntrue {labels[i]}", fontsize=9,
                     color="green" if ok else "red")
    figure.suptitle(f"test digits: predicted class (probability); {len(wrong)} of "
                    f"{len(labels)} wrong, shown first")
    figure.tight_layout()
    figure.savefig(path)


def write_figures(out_dir, metrics: dict, *, first_layer, images, labels,
                  probabilities) -> list[str]:
    """Write curves.png, filters.png and predictions.png into out_dir; return the names."""
    training_curves(os.path.join(out_dir, "curves.png"), metrics)
    first_layer_filters(os.path.join(out_dir, "filters.png"), first_layer)
    test_predictions(os.path.join(out_dir, "predictions.png"), images, labels, probabilities)
    return ["curves.png", "filters.png", "predictions.png"]
