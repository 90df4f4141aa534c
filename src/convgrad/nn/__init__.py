"""convgrad.nn: layers with a hand-written backward pass, a loss, optimizers, save/load.

    from convgrad import nn
    model = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, rng=0), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 4 * 4, 10, rng=1))
    loss_fn = nn.CrossEntropyLoss()
    opt = nn.Adam(model.parameters(), lr=3e-3)

    opt.zero_grad()
    loss = loss_fn.forward(model.forward(x), labels)    # x (N, 1, 8, 8), labels (N,)
    model.backward(loss_fn.backward())                  # fills every parameter's .grad
    opt.step()
    nn.save(model, "model.npz"); nn.load(model, "model.npz")

Every convolution goes through :mod:`convgrad.functional`, every pooling through
:mod:`convgrad.pooling`. Only NumPy is needed.
"""
from .activation import ReLU
from .batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d
from .container import Sequential
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Linear
from .loss import CrossEntropyLoss, log_softmax, softmax
from .module import Module
from .optim import SGD, Adam, Optimizer
from .parameter import Parameter
from .pooling import AvgPool1d, AvgPool2d, AvgPool3d, MaxPool1d, MaxPool2d, MaxPool3d
from .serialization import (ModelFileError, ModelFileNotFoundError, load, read_metadata,
                            save)

__all__ = [
    "Module", "Parameter", "Sequential",
    "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d", "ConvTranspose3d",
    "ReLU", "MaxPool1d", "MaxPool2d", "MaxPool3d", "AvgPool1d", "AvgPool2d", "AvgPool3d",
    "Flatten", "Linear", "Dropout", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d",
    "CrossEntropyLoss", "log_softmax", "softmax",
    "Optimizer", "SGD", "Adam",
    "save", "load", "read_metadata", "ModelFileError", "ModelFileNotFoundError",
]
