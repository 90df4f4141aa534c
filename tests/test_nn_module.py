"""convgrad.nn's plumbing: parameter names and order, modes, repr, initialization,
reproducibility, gradient accumulation, constructor errors, and import hygiene."""
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pytest

from convgrad import nn


def small_model(rng=0, dtype=np.float32):
    rng = np.random.default_rng(rng)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, bias=False, dtype=dtype, rng=rng),
        nn.BatchNorm2d(4, dtype=dtype), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.2, rng=rng), nn.Linear(16, 3, dtype=dtype, rng=rng))


def test_names_order_and_state_match_pytorch():
    torch = pytest.importorskip("torch")
    model = small_model()
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Dropout(0.2),
        torch.nn.Linear(16, 3))
    assert [n for n, _ in model.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert list(model.state_dict()) == list(theirs.state_dict())
    assert [n for n, _ in model.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert model.num_parameters() == sum(p.numel() for p in theirs.parameters()) == 36 + 8 + 51
    assert len(model.parameters()) == 5
    for name, p in model.named_parameters():
        assert p.grad.shape == p.data.shape and p.grad.dtype == p.data.dtype
        assert not p.grad.any()


def test_sequential_container_behaviour():
    named = nn.Sequential(OrderedDict(conv=nn.Conv2d(1, 2, 3, rng=0), act=nn.ReLU()))
    assert [n for n, _ in named.named_parameters()] == ["conv.weight", "conv.bias"]
    assert isinstance(named[0], nn.Conv2d) and len(named) == 2
    head = named[:1]
    assert isinstance(head, nn.Sequential) and head[0] is named[0]
    seq = nn.Sequential().append(nn.Linear(2, 2, rng=0)).append(nn.ReLU())
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU"]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias"]
    nested = nn.Sequential(nn.Sequential(nn.Linear(2, 3, rng=0)), nn.Linear(3, 1, rng=0))
    assert [n for n, _ in nested.named_parameters()] == ["0.0.weight", "0.0.bias",
                                                         "1.weight", "1.bias"]
    with pytest.raises(TypeError, match="layer '1' is not a convgrad.nn.Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    with pytest.raises(ValueError, match="without dots"):
        nn.Sequential(OrderedDict([("a.b", nn.ReLU())]))


def test_train_eval_recursive():
    model = nn.Sequential(nn.Sequential(nn.Dropout(0.5)), nn.BatchNorm2d(2))
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    with pytest.raises(TypeError):
        model.train("no")


def test_repr_shows_non_default_arguments_only():
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 8, (3, 1), stride=2, padding="same", dilation=(1, 2), groups=8,
                  bias=False, dtype=np.float64),
        nn.ConvTranspose2d(8, 4, 3, stride=2, output_padding=1),
        nn.BatchNorm2d(4, momentum=None), nn.Flatten(), nn.Dropout(0.25), nn.Linear(64, 10),
        nn.AvgPool2d(3, stride=1, padding=1))
    assert repr(model) == """Sequential(
  (0): Conv2d(1, 16, kernel_size=(3, 3), padding=(1, 1))
  (1): ReLU()
  (2): MaxPool2d(kernel_size=2)
  (3): Conv2d(16, 8, kernel_size=(3, 1), stride=(2, 2), padding='same', dilation=(1, 2), groups=8, bias=False, dtype=float64)
  (4): ConvTranspose2d(8, 4, kernel_size=(3, 3), stride=(2, 2), output_padding=(1, 1))
  (5): BatchNorm2d(4, momentum=None)
  (6): Flatten()
  (7): Dropout(p=0.25)
  (8): Linear(in_features=64, out_features=10)
  (9): AvgPool2d(kernel_size=3, stride=1, padding=1)
)"""
    assert repr(nn.Conv2d(2, 2, 3, padding=((1, 0), (0, 1)))) == (
        "Conv2d(2, 2, kernel_size=(3, 3), padding=((1, 0), (0, 1)))")
    assert repr(nn.Sequential()) == "Sequential()"
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"


@pytest.mark.parametrize("make, fan_in", [
    (lambda rng: nn.Conv2d(6, 8, (3, 2), groups=2, rng=rng), 3 * 6),
    (lambda rng: nn.Conv1d(4, 5, 7, rng=rng), 28),
    (lambda rng: nn.ConvTranspose2d(4, 6, 3, groups=2, rng=rng), 3 * 9),
    (lambda rng: nn.Linear(50, 40, rng=rng), 50),
])
def test_default_initialization_is_pytorch_kaiming_uniform(make, fan_in):
    """weight and bias uniform on +-1/sqrt(fan_in), as kaiming_uniform_(a=sqrt(5))."""
    layer = make(0)
    bound = 1 / np.sqrt(fan_in)
    w, b = layer.weight.data, layer.bias.data
    assert w.dtype == np.float32
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(w).max() > 0.8 * bound                       # spread over the range
    assert abs(np.mean(w)) < bound / 3
    # PyTorch's own bound, from its initializer, for the same shape
    torch = pytest.importorskip("torch")
    t = torch.empty(w.shape, dtype=torch.float64)
    torch.nn.init.kaiming_uniform_(t, a=np.sqrt(5))
    fan = torch.nn.init._calculate_fan_in_and_fan_out(t)[0]
    assert fan == fan_in


def test_batchnorm_initial_state():
    bn = nn.BatchNorm2d(3)
    assert np.array_equal(bn.weight.data, np.ones(3)) and np.array_equal(bn.bias.data, np.zeros(3))
    assert np.array_equal(bn.running_mean, np.zeros(3))
    assert np.array_equal(bn.running_var, np.ones(3))
    assert bn.num_batches_tracked.dtype == np.int64 and int(bn.num_batches_tracked) == 0
    assert bn.eps == 1e-5 and bn.momentum == 0.1


def test_same_seed_same_weights_and_outputs_different_seed_different():
    a, b, c = small_model(5), small_model(5), small_model(6)
    for (na, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(),
                                          c.named_parameters()):
        assert np.array_equal(pa.data, pb.data), na
        if "weight" in na and pa.data.std() > 0 and "1." not in na:
            assert not np.array_equal(pa.data, pc.data), na
    x = np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)
    assert np.array_equal(a(x), b(x))
    # float64 weights are the float32 weights before rounding
    d = small_model(5, dtype=np.float64)
    assert np.allclose(d[0].weight.data, a[0].weight.data, rtol=1e-6)


def test_rng_arguments():
    assert np.array_equal(nn.Linear(3, 2, rng=7).weight.data, nn.Linear(3, 2, rng=7).weight.data)
    g = np.random.default_rng(1)
    first, second = nn.Linear(3, 2, rng=g), nn.Linear(3, 2, rng=g)
    assert not np.array_equal(first.weight.data, second.weight.data)   # one stream, consumed
    with pytest.raises(TypeError, match="rng must be None, an int seed"):
        nn.Linear(3, 2, rng="seed")
    with pytest.raises(ValueError, match="rng=-1"):
        nn.Conv2d(1, 1, 1, rng=-1)


def test_gradients_accumulate_until_zeroed_like_pytorch():
    layer = nn.Linear(3, 2, dtype=np.float64, rng=0)
    x = np.ones((4, 3))
    dy = np.random.default_rng(0).standard_normal((4, 2))
    layer(x)
    layer.backward(dy)
    once = layer.weight.grad.copy()
    layer.backward(dy)
    assert np.allclose(layer.weight.grad, 2 * once)
    layer.zero_grad()
    assert not layer.weight.grad.any() and not layer.bias.grad.any()


def test_backward_before_forward_is_a_clear_error():
    for layer in (nn.Conv2d(1, 1, 1), nn.Linear(1, 1), nn.ReLU(), nn.MaxPool2d(2),
                  nn.BatchNorm2d(1), nn.Dropout(), nn.Flatten()):
        with pytest.raises(RuntimeError, match="call forward"):
            layer.backward(np.zeros((1, 1, 1, 1)))


def test_float32_stays_float32_through_a_network():
    model = small_model()
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    y = model(x)
    assert y.dtype == np.float32
    fn = nn.CrossEntropyLoss()
    fn(y, np.array([0, 2]))
    dx = model.backward(fn.backward())
    assert dx.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: nn.Conv2d(0, 4, 3), ValueError, "in_channels must be a positive int, got 0"),
    (lambda: nn.Conv2d(3, 4.0, 3), TypeError, "out_channels must be a positive int, got 4.0"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), ValueError, "groups=2 must divide the in_channels"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "groups=4 must divide the out_channels"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), ValueError, "stride must be .* got 0"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), ValueError, r"kernel_size has 3 entries, \(3, 3, 3\)"),
    (lambda: nn.Conv2d(3, 4, 3, padding="SAME"), ValueError, "did you mean 'same'"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), ValueError, "negative padding"),
    (lambda: nn.Conv2d(3, 4, 3, dilation=(1, True)), TypeError, "True is a bool"),
    (lambda: nn.Conv2d(3, 4, 3, bias="yes"), TypeError, "bias must be True or False, got 'yes'"),
    (lambda: nn.Conv2d(3, 4, 3, dtype=np.int32), TypeError, "dtype=<class 'numpy.int32'>"),
    (lambda: nn.Conv1d(3, 4, 3, padding=(1, 2)), ValueError, r"write \(\(1, 2\),\)"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, stride=2, output_padding=2), ValueError,
     "output_padding=2 along H must be smaller than either the stride"),
    (lambda: nn.ConvTranspose2d(2, 2, 3, padding="same", output_padding=1), ValueError,
     "cannot be combined with padding='same'"),
    (lambda: nn.MaxPool2d(2, padding=2), ValueError, r"padding \(2, 2\) along H must be at most"),
    (lambda: nn.MaxPool2d(0), ValueError, "kernel_size must be"),
    (lambda: nn.AvgPool2d(2, stride=(1, 0)), ValueError, r"stride must be .*\(1, 0\)"),
    (lambda: nn.Linear(0, 3), ValueError, "in_features must be a positive int, got 0"),
    (lambda: nn.Linear(2, 3, bias=None), TypeError, "bias must be True or False"),
    (lambda: nn.Dropout(1.5), ValueError, "p must be a probability in \\[0, 1\\], got 1.5"),
    (lambda: nn.Dropout("0.5"), TypeError, "got '0.5'"),
    (lambda: nn.BatchNorm2d(0), ValueError, "num_features must be a positive int, got 0"),
    (lambda: nn.BatchNorm2d(3, momentum=2), ValueError, "momentum must be .* got 2"),
    (lambda: nn.BatchNorm2d(3, eps=0), ValueError, "eps must be a positive float, got 0"),
    (lambda: nn.Flatten(start_dim="1"), TypeError, "start_dim must be an int, got '1'"),
    (lambda: nn.CrossEntropyLoss("mean "), ValueError, "reduction='mean '"),
])
def test_constructor_errors_name_the_value(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_forward_errors_name_shapes():
    with pytest.raises(ValueError, match=r"conv2d: x has C=2 channels"):
        nn.Conv2d(3, 4, 3)(np.zeros((1, 2, 5, 5), np.float32))
    with pytest.raises(ValueError, match=r"Linear: x must have shape \(\*, 4\).*\(2, 3\)"):
        nn.Linear(4, 2)(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="does not fit an input with 2 axes"):
        nn.Flatten(2)(np.zeros((2, 3)))


def test_importing_nn_and_digits_needs_numpy_only():
    code = ("import sys, convgrad, convgrad.nn, convgrad.apps.digits; "
            "heavy = [m for m in ('torch', 'sklearn', 'matplotlib', 'tqdm', 'PIL', 'sympy') "
            "if m in sys.modules]; print(heavy); sys.exit(1 if heavy else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
