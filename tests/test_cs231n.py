"""The course notebook's own checks, run unchanged on convgrad.cs231n, plus stride 2."""
import numpy as np
import pytest

from convgrad.cs231n import (affine_backward, affine_forward, conv_backward_fast,
                             conv_backward_naive, conv_forward_fast, conv_forward_naive,
                             conv_relu_pool_backward, conv_relu_pool_forward,
                             eval_numerical_gradient, eval_numerical_gradient_array,
                             max_pool_backward_fast, max_pool_backward_naive,
                             max_pool_forward_fast, max_pool_forward_naive, rel_error,
                             relu_backward, relu_forward)


def test_conv_forward_naive_matches_the_course_values():
    # The published expected output of ConvolutionalNetworks.ipynb (8 decimals).
    x_shape, w_shape = (2, 3, 4, 4), (3, 3, 4, 4)
    x = np.linspace(-0.1, 0.5, num=np.prod(x_shape)).reshape(x_shape)
    w = np.linspace(-0.2, 0.3, num=np.prod(w_shape)).reshape(w_shape)
    b = np.linspace(-0.1, 0.2, num=3)
    out, _ = conv_forward_naive(x, w, b, {"stride": 2, "pad": 1})
    correct_out = np.array([[[[-0.08759809, -0.10987781], [-0.18387192, -0.2109216]],
                             [[0.21027089, 0.21661097], [0.22847626, 0.23004637]],
                             [[0.50813986, 0.54309974], [0.64082444, 0.67101435]]],
                            [[[-0.98053589, -1.03143541], [-1.19128892, -1.24695841]],
                             [[0.69108355, 0.66880383], [0.59480972, 0.56776003]],
                             [[2.36270298, 2.36904306], [2.38090835, 2.38247847]]]])
    assert rel_error(out, correct_out) < 1e-7
    assert np.abs(out - correct_out).max() < 1e-8


@pytest.mark.parametrize("conv_param,x_shape", [
    ({"stride": 1, "pad": 1}, (4, 3, 5, 5)),          # the notebook's check
    ({"stride": 2, "pad": 1}, (3, 3, 6, 6)),          # leftover row and column
    ({"stride": 3, "pad": 0}, (2, 3, 8, 7)),
    ({"stride": 2, "pad": ((1, 0), (0, 2)), "dilation": 2}, (2, 3, 7, 8)),
])
@pytest.mark.parametrize("backward,forward", [(conv_backward_naive, conv_forward_naive),
                                              (conv_backward_fast, conv_forward_fast)])
def test_conv_backward_numerical(conv_param, x_shape, forward, backward):
    np.random.seed(231)
    x = np.random.randn(*x_shape)
    w = np.random.randn(2, 3, 3, 3)
    b = np.random.randn(2,)
    out, cache = forward(x, w, b, conv_param)
    dout = np.random.randn(*out.shape)
    dx_num = eval_numerical_gradient_array(lambda x: forward(x, w, b, conv_param)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: forward(x, w, b, conv_param)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: forward(x, w, b, conv_param)[0], b, dout)
    dx, dw, db = backward(dout, cache)
    # the course sees ~1e-8 on its check; central differences with h = 1e-5 carry about
    # 2e-10 of rounding noise, ~1e-7 relative on an entry of dx near 1e-3 (this seed has
    # one: 5.6e-8 or 1.1e-7 depending on the forward's order of summation)
    assert rel_error(dx, dx_num) < 2e-7
    assert rel_error(dw, dw_num) < 1e-8
    assert rel_error(db, db_num) < 1e-8


@pytest.mark.parametrize("conv_param", [{"stride": 2, "pad": 1}, {"stride": 2, "pad": 0},
                                        {"stride": 3, "pad": 2, "groups": 3}])
def test_fast_matches_naive_and_caches_are_interchangeable(conv_param):
    np.random.seed(231)
    x = np.random.randn(10, 3, 15, 16)        # stride 2 does not divide: leftover rows
    w = np.random.randn(6, 3 // conv_param.get("groups", 1), 3, 3)
    b = np.random.randn(6,)
    dout = np.random.randn(*conv_forward_naive(x, w, b, conv_param)[0].shape)
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
    assert rel_error(out_naive, out_fast) < 1e-9
    reference = conv_backward_naive(dout, cache_naive)
    for cache in (cache_fast, cache_naive):
        for grad, ref in zip(conv_backward_fast(dout, cache), reference):
            assert rel_error(grad, ref) < 1e-9
    for grad, ref in zip(conv_backward_naive(dout, cache_fast), reference):
        assert rel_error(grad, ref) < 1e-12


def test_max_pool_forward_naive_matches_the_course_values():
    x_shape = (2, 3, 4, 4)
    x = np.linspace(-0.3, 0.4, num=np.prod(x_shape)).reshape(x_shape)
    out, _ = max_pool_forward_naive(x, {"pool_width": 2, "pool_height": 2, "stride": 2})
    correct_out = np.array([[[[-0.26315789, -0.24842105], [-0.20421053, -0.18947368]],
                             [[-0.14526316, -0.13052632], [-0.08631579, -0.07157895]],
                             [[-0.02736842, -0.01263158], [0.03157895, 0.04631579]]],
                            [[[0.09052632, 0.10526316], [0.14947368, 0.16421053]],
                             [[0.20842105, 0.22315789], [0.26736842, 0.28210526]],
                             [[0.32631579, 0.34105263], [0.38526316, 0.4]]]])
    assert rel_error(out, correct_out) < 1e-7


@pytest.mark.parametrize("pool_param", [{"pool_height": 2, "pool_width": 2, "stride": 2},
                                        {"pool_height": 3, "pool_width": 2, "stride": 2}])
def test_max_pool_backward_numerical_and_fast(pool_param):
    np.random.seed(231)
    x = np.random.randn(3, 2, 8, 7)
    out, cache = max_pool_forward_naive(x, pool_param)
    dout = np.random.randn(*out.shape)
    dx_num = eval_numerical_gradient_array(
        lambda x: max_pool_forward_naive(x, pool_param)[0], x, dout)
    dx = max_pool_backward_naive(dout, cache)
    assert rel_error(dx, dx_num) < 1e-8
    out_fast, cache_fast = max_pool_forward_fast(x, pool_param)
    assert rel_error(out, out_fast) == 0
    assert rel_error(max_pool_backward_fast(dout, cache_fast), dx) == 0
    assert rel_error(max_pool_backward_fast(dout, cache), dx) == 0      # naive cache


def test_relu_and_affine_backward_numerical():
    np.random.seed(231)
    x = np.random.randn(10, 2, 3)
    w = np.random.randn(6, 5)
    b = np.random.randn(5)
    dout = np.random.randn(10, 5)
    dx_num = eval_numerical_gradient_array(lambda x: affine_forward(x, w, b)[0], x, dout)
    dw_num = eval_numerical_gradient_array(lambda w: affine_forward(x, w, b)[0], w, dout)
    db_num = eval_numerical_gradient_array(lambda b: affine_forward(x, w, b)[0], b, dout)
    dx, dw, db = affine_backward(dout, affine_forward(x, w, b)[1])
    assert max(rel_error(dx, dx_num), rel_error(dw, dw_num), rel_error(db, db_num)) < 1e-8
    x = np.random.randn(10, 10)
    dout = np.random.randn(10, 10)
    dx_num = eval_numerical_gradient_array(lambda x: relu_forward(x)[0], x, dout)
    assert rel_error(relu_backward(dout, relu_forward(x)[1]), dx_num) < 1e-8


def test_conv_relu_pool_sandwich():
    np.random.seed(231)
    x = np.random.randn(2, 3, 16, 16)
    w = np.random.randn(3, 3, 3, 3)
    b = np.random.randn(3,)
    dout = np.random.randn(2, 3, 8, 8)
    conv_param, pool_param = {"stride": 1, "pad": 1}, {"pool_height": 2, "pool_width": 2,
                                                       "stride": 2}
    out, cache = conv_relu_pool_forward(x, w, b, conv_param, pool_param)
    dx, dw, db = conv_relu_pool_backward(dout, cache)
    f = lambda x, w, b: conv_relu_pool_forward(x, w, b, conv_param, pool_param)[0]  # noqa
    assert rel_error(dx, eval_numerical_gradient_array(lambda x: f(x, w, b), x, dout)) < 1e-6
    assert rel_error(dw, eval_numerical_gradient_array(lambda w: f(x, w, b), w, dout)) < 1e-7
    assert rel_error(db, eval_numerical_gradient_array(lambda b: f(x, w, b), b, dout)) < 1e-7


def test_eval_numerical_gradient_scalar(capsys):
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = eval_numerical_gradient(lambda x: np.sum(x ** 3), x, verbose=True)
    np.testing.assert_allclose(grad, 3 * x ** 2, rtol=1e-8)
    assert "(0, 0)" in capsys.readouterr().out


def test_eval_numerical_gradient_restores_x_even_when_f_raises():
    x = np.random.default_rng(0).standard_normal((3, 4))
    original = x.copy()

    def f(a):
        if a[1, 2] != original[1, 2]:
            raise RuntimeError("boom")
        return a.sum()

    with pytest.raises(RuntimeError):
        eval_numerical_gradient(f, x, verbose=False)
    np.testing.assert_array_equal(x, original)           # bit-for-bit
    x.flags.writeable = False                             # read-only: a copy is perturbed
    grad = eval_numerical_gradient_array(lambda a: a * 2.0, x, np.ones_like(x))
    np.testing.assert_allclose(grad, 2.0)


@pytest.mark.parametrize("conv_param,fragment", [
    ({"pad": 1}, "missing the key 'stride'"),
    ({"stride": 1}, "missing the key 'pad'"),
    ({"stride": 1, "padding": 1}, "unknown key 'padding' (did you mean 'pad'?)"),
    ({"stride": 0, "pad": 1}, "conv_param['stride'] must be a positive int"),
])
def test_conv_param_errors_name_the_key(conv_param, fragment):
    x, w, b = np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    with pytest.raises(ValueError) as info:
        conv_forward_naive(x, w, b, conv_param)
    assert fragment in str(info.value)
    with pytest.raises(ValueError, match="missing the key 'pool_width'"):
        max_pool_forward_naive(x, {"pool_height": 2, "stride": 2})
    with pytest.raises(TypeError, match="conv_param must be a dict"):
        conv_forward_fast(x, w, b, [1, 1])
