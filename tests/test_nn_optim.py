"""SGD and Adam against torch.optim: the same gradients fed to both for several steps."""
import numpy as np
import pytest

from convgrad import nn

torch = pytest.importorskip("torch")

SHAPES = [(3, 4), (5,), (2, 1, 3, 3)]


def run_both(make_ours, make_theirs, steps=6, dtype=np.float64, lr_schedule=None, seed=0):
    """Apply identical random gradients with both optimizers; return both final params."""
    rng = np.random.default_rng(seed)
    start = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ours = [nn.Parameter(a) for a in start]
    theirs = [torch.nn.Parameter(torch.tensor(a)) for a in start]
    opt, topt = make_ours(ours), make_theirs(theirs)
    for step in range(steps):
        if lr_schedule is not None:
            opt.lr = lr_schedule(step)
            for group in topt.param_groups:
                group["lr"] = lr_schedule(step)
        opt.zero_grad()
        topt.zero_grad()
        for p, t in zip(ours, theirs):
            g = rng.standard_normal(p.shape).astype(dtype)
            if step == 2 and g.ndim == 1:
                g[...] = 0                                # a step with a zero gradient
            p.grad += g
            t.grad = torch.tensor(g)
        opt.step()
        topt.step()
    return [p.data for p in ours], [t.detach().numpy() for t in theirs]


def assert_close(ours, theirs, tol=1e-12):
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("kwargs", [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.8, nesterov=True),
    dict(lr=0.02, momentum=0.9, weight_decay=1e-2),
    dict(lr=0.1, weight_decay=0.5, momentum=0.5, nesterov=True),
])
def test_sgd_matches_torch(kwargs):
    ours, theirs = run_both(lambda p: nn.SGD(p, **kwargs),
                            lambda p: torch.optim.SGD(p, **kwargs))
    assert_close(ours, theirs)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(lr=0.01),
    dict(lr=0.003, betas=(0.8, 0.99), eps=1e-6),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.1, betas=(0.0, 0.5)),
])
def test_adam_matches_torch(kwargs):
    ours, theirs = run_both(lambda p: nn.Adam(p, **kwargs),
                            lambda p: torch.optim.Adam(p, **kwargs), steps=8)
    assert_close(ours, theirs)


def test_changing_lr_between_steps_matches_torch():
    schedule = lambda step: 0.01 * (0.5 ** step)  # noqa: E731
    for ours_cls, torch_cls in ((nn.Adam, torch.optim.Adam), (nn.SGD, torch.optim.SGD)):
        ours, theirs = run_both(lambda p: ours_cls(p, lr=0.01),
                                lambda p: torch_cls(p, lr=0.01), lr_schedule=schedule)
        assert_close(ours, theirs)


def test_float32_parameters_stay_float32_and_match_torch():
    ours, theirs = run_both(lambda p: nn.Adam(p, lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01),
                            dtype=np.float32)
    assert_close(ours, theirs, tol=1e-5)
    ours, theirs = run_both(lambda p: nn.SGD(p, lr=0.01, momentum=0.9),
                            lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9), dtype=np.float32)
    assert_close(ours, theirs, tol=1e-5)


def test_step_updates_in_place_and_zero_grad():
    p = nn.Parameter(np.ones(3))
    data = p.data
    p.grad[...] = 1.0
    opt = nn.SGD([p], lr=0.5)
    opt.step()
    assert p.data is data and np.allclose(p.data, 0.5)
    opt.zero_grad()
    assert not p.grad.any()


@pytest.mark.parametrize("make, error, pattern", [
    (lambda p: nn.SGD(p, lr=-0.1), ValueError, "lr must be >= 0.0, got -0.1"),
    (lambda p: nn.SGD(p, lr="0.1"), TypeError, "lr must be a number, got '0.1'"),
    (lambda p: nn.SGD(p, lr=0.1, nesterov=True), ValueError, "Nesterov momentum needs"),
    (lambda p: nn.SGD(p, lr=0.1, momentum=-1), ValueError, "momentum must be >= 0.0"),
    (lambda p: nn.Adam(p, betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be >= 0.0 and < 1.0"),
    (lambda p: nn.Adam(p, betas=0.9), TypeError, "betas must be a pair"),
    (lambda p: nn.Adam(p, eps=-1e-8), ValueError, "eps must be >= 0.0"),
    (lambda p: nn.Adam([]), ValueError, "empty parameter list"),
    (lambda p: nn.Adam(p[0]), TypeError, "got a single Parameter"),
    (lambda p: nn.Adam([np.zeros(2)]), TypeError, r"params\[0\] is .* not a convgrad.nn.Parameter"),
    (lambda p: nn.SGD(p + p, lr=0.1), ValueError, "appears more than once"),
])
def test_optimizer_errors(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make([nn.Parameter(np.zeros(2))])


INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize("make, pattern", [
    (lambda p: nn.SGD(p, lr=INF), "SGD: lr must be a finite number >= 0.0, got inf"),
    (lambda p: nn.SGD(p, lr=NAN), "SGD: lr must be a finite number >= 0.0, got nan"),
    (lambda p: nn.SGD(p, lr=-INF), "SGD: lr must be a finite number >= 0.0, got -inf"),
    (lambda p: nn.SGD(p, lr=np.float32(NAN)), "lr must be a finite number"),
    (lambda p: nn.SGD(p, lr=10**400), "lr must be a finite number"),
    (lambda p: nn.SGD(p, lr=-1e-3), r"SGD: lr must be >= 0.0, got -0.001"),
    (lambda p: nn.SGD(p, lr=0.1, momentum=NAN), "momentum must be a finite number"),
    (lambda p: nn.SGD(p, lr=0.1, momentum=INF), "momentum must be a finite number"),
    (lambda p: nn.SGD(p, lr=0.1, dampening=INF), "dampening must be a finite number"),
    (lambda p: nn.SGD(p, lr=0.1, weight_decay=NAN), "weight_decay must be a finite number"),
    (lambda p: nn.SGD(p, lr=0.1, weight_decay=-1), "weight_decay must be >= 0.0"),
    (lambda p: nn.Adam(p, lr=INF), "Adam: lr must be a finite number >= 0.0, got inf"),
    (lambda p: nn.Adam(p, lr=NAN), "Adam: lr must be a finite number"),
    (lambda p: nn.Adam(p, betas=(NAN, 0.999)), r"betas\[0\] must be a finite number"),
    (lambda p: nn.Adam(p, betas=(0.9, -INF)), r"betas\[1\] must be a finite number"),
    (lambda p: nn.Adam(p, eps=INF), "eps must be a finite number"),
    (lambda p: nn.Adam(p, eps=NAN), "eps must be a finite number"),
    (lambda p: nn.Adam(p, weight_decay=INF), "weight_decay must be a finite number"),
])
def test_non_finite_or_negative_hyperparameters_are_value_errors(make, pattern):
    """lr=inf used to be accepted and lr=nan gave a TypeError: both are values, refused."""
    with pytest.raises(ValueError, match=pattern):
        make([nn.Parameter(np.zeros(2))])


@pytest.mark.parametrize("optimizer", [nn.SGD, nn.Adam])
@pytest.mark.parametrize("value", [INF, NAN, -0.5, "fast"])
def test_setting_lr_later_is_checked_too(optimizer, value):
    """A schedule assigns opt.lr every step: a bad value is refused there, not applied."""
    p = nn.Parameter(np.ones(2))
    opt = optimizer([p], lr=0.1)
    with pytest.raises(TypeError if isinstance(value, str) else ValueError, match="lr must"):
        opt.lr = value
    assert opt.lr == 0.1
    p.grad[...] = 1.0
    opt.step()
    assert np.all(np.isfinite(p.data))


def test_step_overflow_propagates_inf_without_numpy_warnings():
    """A finite but huge lr overflows float32 parameters to inf, as torch does, silently."""
    import torch
    import warnings
    p = nn.Parameter(np.ones(3, np.float32))
    p.grad[...] = np.array([1e10, -1e10, 0.0], np.float32)
    t = torch.ones(3, requires_grad=True)
    t.grad = torch.tensor([1e10, -1e10, 0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.SGD([p], lr=1e38).step()
    torch.optim.SGD([t], lr=1e38).step()
    assert np.array_equal(p.data, t.detach().numpy())      # [-inf, inf, 1]
