"""Layer constructors validate their sizes as the functional API does: absurd strides,
kernels, channels and paddings get the functional's errors (a MemoryError naming the size
for what could never be allocated), never NumPy's "Maximum allowed dimension exceeded";
and what the functional would accept, the layer accepts and computes."""
import numpy as np
import pytest
import torch

from convgrad import nn

CONVS = [nn.Conv1d, nn.Conv2d, nn.Conv3d]
TRANSPOSED = [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d]
HUGE = [2**31, 2**62, 2**70]
NUMPY_LEAKS = ("Maximum allowed dimension", "array is too big", "Unable to allocate",
               "cannot convert", "too large to convert", "Python int too large")


@pytest.mark.parametrize("layer", CONVS + TRANSPOSED, ids=lambda c: c.__name__)
@pytest.mark.parametrize("argument", ["stride", "dilation", "padding", "kernel_size",
                                      "in_channels", "out_channels"])
@pytest.mark.parametrize("value", HUGE)
def test_huge_sizes_never_leak_numpy_errors(layer, argument, value):
    arguments = dict(in_channels=2, out_channels=2, kernel_size=3)
    arguments[argument] = value
    try:
        layer(**arguments)
    except (ValueError, TypeError, MemoryError) as error:
        assert not any(leak in str(error) for leak in NUMPY_LEAKS), error
        assert type(error).__module__ == "builtins", type(error)   # not NumPy's subclass
        if isinstance(error, MemoryError):
            assert "would need" in str(error) and f"{layer.__name__}:" in str(error)


@pytest.mark.parametrize("make, shape", [
    (lambda: nn.Conv2d(3, 4, 2**40), "(4, 3, 1099511627776, 1099511627776)"),
    (lambda: nn.Conv2d(2**40, 4, 3), "(4, 1099511627776, 3, 3)"),
    (lambda: nn.ConvTranspose2d(2**40, 4, 3), "(1099511627776, 4, 3, 3)"),
    (lambda: nn.Conv2d(3, 4, (2**20, 2**20)), "(4, 3, 1048576, 1048576)"),
    (lambda: nn.Linear(2**40, 2**40), "(1099511627776, 1099511627776)"),
    (lambda: nn.Linear(10**6, 10**6), "(1000000, 1000000)"),
    (lambda: nn.BatchNorm2d(2**50), "(1125899906842624,)"),
])
def test_parameters_that_could_never_exist_are_a_memory_error_naming_the_shape(make, shape):
    """Before: NumPy's 'Unable to allocate' or 'array is too big' from deep inside init."""
    with pytest.raises(MemoryError, match="would need .* more than this machine's") as info:
        make()
    assert shape in str(info.value)


@pytest.mark.parametrize("make, what", [
    (lambda: nn.Conv2d(3, 4, 3, dilation=2**62), "the smallest input it accepts"),
    (lambda: nn.Conv3d(1, 1, 3, dilation=(1, 1, 2**40)), "the smallest input it accepts"),
    (lambda: nn.Conv2d(3, 4, 3, padding=2**70), "the output for the smallest input"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, padding=2**70), "the smallest input it accepts"),
    (lambda: nn.ConvTranspose1d(3, 4, 3, stride=2**40, dilation=2**40),
     "the output for the smallest input"),
])
def test_geometries_no_input_could_use_are_refused(make, what):
    """Every call of such a layer would fail in the functional with a MemoryError naming
    the size; the constructor says so at once."""
    with pytest.raises(MemoryError, match=what):
        make()


def _torch_layer(layer, stride):
    t = {nn.Conv1d: torch.nn.Conv1d, nn.Conv2d: torch.nn.Conv2d, nn.Conv3d: torch.nn.Conv3d,
         nn.ConvTranspose1d: torch.nn.ConvTranspose1d,
         nn.ConvTranspose2d: torch.nn.ConvTranspose2d,
         nn.ConvTranspose3d: torch.nn.ConvTranspose3d}[type(layer)]
    module = t(layer.in_channels, layer.out_channels, layer.kernel_size, stride=stride,
               padding=layer.padding, dtype=torch.float64)
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(layer.weight.data))
        module.bias.copy_(torch.from_numpy(layer.bias.data))
    return module


@pytest.mark.parametrize("layer_class", CONVS + TRANSPOSED, ids=lambda c: c.__name__)
def test_a_stride_of_2_to_the_70_builds_and_computes_like_torch(layer_class):
    """stride=2**70 used to raise "Maximum allowed dimension exceeded" in the constructor.
    The functional accepts it (one output per axis for a conv, a kernel-sized output for a
    transposed conv of a 1-pixel input), so the layer does too. Oracle: PyTorch with a
    stride that gives the same windows (the input's size)."""
    nd = CONVS.index(layer_class) + 1 if layer_class in CONVS else TRANSPOSED.index(layer_class) + 1
    layer = layer_class(2, 3, 3, stride=2**70, padding=1, dtype=np.float64, rng=0)
    rng = np.random.default_rng(1)
    size = 1 if layer.transposed else 5
    x = rng.standard_normal((2, 2) + (size,) * nd)
    y = layer(x)
    expected = _torch_layer(layer, stride=5)(torch.from_numpy(x)).detach().numpy()
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    xt = torch.from_numpy(x).requires_grad_()
    _torch_layer(layer, stride=5)(xt).backward(torch.from_numpy(dy))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: nn.BatchNorm2d(3, eps=float("inf")), ValueError, "eps must be a positive float, got inf"),
    (lambda: nn.BatchNorm2d(3, eps=float("nan")), ValueError, "eps must be a positive float, got nan"),
    (lambda: nn.BatchNorm2d(3, eps="1e-5"), TypeError, "eps must be a positive float, got '1e-5'"),
    (lambda: nn.BatchNorm2d(3, momentum=float("nan")), ValueError, "momentum must be .* got nan"),
    (lambda: nn.BatchNorm2d(3, momentum="0.1"), TypeError, "momentum must be .* got '0.1'"),
    (lambda: nn.Dropout(float("nan")), ValueError, "p must be a probability in \\[0, 1\\], got nan"),
])
def test_non_finite_layer_hyperparameters(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()
