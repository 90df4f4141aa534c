"""convgrad.cs231n speaks the course's language: its names only, and messages about
conv_param['pad'] and dout rather than the core's padding= and dy."""
import numpy as np
import pytest

from convgrad import cs231n

COURSE = {"conv_forward_naive", "conv_backward_naive", "conv_forward_fast",
          "conv_backward_fast", "max_pool_forward_naive", "max_pool_backward_naive",
          "max_pool_forward_fast", "max_pool_backward_fast", "relu_forward", "relu_backward",
          "affine_forward", "affine_backward", "conv_relu_forward", "conv_relu_backward",
          "conv_relu_pool_forward", "conv_relu_pool_backward", "eval_numerical_gradient",
          "eval_numerical_gradient_array", "rel_error"}


def test_only_the_course_names_are_exported():
    assert set(cs231n.__all__) == COURSE
    assert set(dir(cs231n)) == COURSE
    namespace = {}
    exec("from convgrad.cs231n import *", namespace)           # noqa: S102
    assert set(namespace) - {"__builtins__"} == COURSE
    for helper in ("as_float_array", "check_shape", "pool_geometry"):
        assert helper not in dir(cs231n)
    import pydoc
    text = pydoc.render_doc(cs231n, renderer=pydoc.plaintext)
    assert "as_float_array" not in text and "check_shape" not in text


@pytest.mark.parametrize("function", ["conv_forward_naive", "conv_forward_fast"])
@pytest.mark.parametrize("conv_param, message", [
    ({"stride": 1, "pad": -1}, "{f}: conv_param['pad'] must be a non-negative int"),
    ({"stride": 1, "pad": "Same"}, "{f}: conv_param['pad']='Same' is not a known padding"),
    ({"stride": 1, "pad": (1, 2, 3)}, "{f}: conv_param['pad'] has 3 entries"),
    ({"stride": 1, "pad": 1.5}, "{f}: conv_param['pad'] must be a non-negative int"),
    ({"stride": (1, 0), "pad": 0}, "{f}: conv_param['stride'] must be a positive int"),
    ({"stride": 1, "pad": 0, "dilation": 0}, "{f}: conv_param['dilation'] must be a positive"),
    ({"stride": 1, "pad": 0, "groups": 2}, "{f}: conv_param['groups']=2 must divide"),
])
def test_conv_messages_speak_of_conv_param(function, conv_param, message):
    x, w, b = np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    with pytest.raises((ValueError, TypeError)) as info:
        getattr(cs231n, function)(x, w, b, conv_param)
    text = str(info.value)
    assert text.startswith(message.format(f=function)), text
    assert "padding=" not in text and not text.startswith("conv2d")


@pytest.mark.parametrize("function", ["conv_backward_naive", "conv_backward_fast"])
def test_backward_messages_speak_of_dout(function):
    x, w, b = np.zeros((1, 3, 5, 5)), np.zeros((2, 3, 3, 3)), np.zeros(2)
    out, cache = cs231n.conv_forward_fast(x, w, b, {"stride": 2, "pad": 1})
    with pytest.raises(ValueError) as info:
        getattr(cs231n, function)(out[:, :, :1], cache)
    assert str(info.value).startswith(f"{function}: dout must have the output's shape "
                                      f"{out.shape}")


def test_other_messages_keep_their_words():
    x, w, b = np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3)), np.zeros(2)
    with pytest.raises(ValueError, match=r"^conv_forward_fast: x has C=3 channels"):
        cs231n.conv_forward_fast(x, w, b, {"stride": 1, "pad": 0})
