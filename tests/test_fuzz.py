"""Fuzzing with garbage arguments: only ValueError or TypeError may come out.

The default run draws a few hundred cases; the long run is

    python -m pytest -m slow tests/test_fuzz.py

(excluded from the default test command by the 'slow' marker).
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad import pooling

_valid_x = np.zeros((2, 3, 6, 6))
_valid_w = np.zeros((4, 3, 3, 3))

small_ints = st.integers(-3, 9)
scalars = st.one_of(small_ints, st.floats(allow_nan=True, width=32), st.booleans(),
                    st.none(), st.text(max_size=6), st.just(np.int64(2)), st.just(1.0 + 2j))
per_axis = st.one_of(scalars, st.lists(scalars, max_size=4).map(tuple),
                     st.lists(st.lists(small_ints, max_size=3).map(tuple), max_size=4).map(tuple),
                     st.sampled_from(["same", "valid", "SAME", "full", ""]),
                     st.just(np.array([1, 2])))
arrays = st.one_of(
    st.just(_valid_x), st.just(_valid_w),
    st.tuples(*[st.integers(0, 4)] * 4).map(np.zeros),
    st.tuples(*[st.integers(0, 3)] * 3).map(np.ones),
    st.tuples(*[st.integers(1, 3)] * 5).map(np.ones),
    st.sampled_from([np.zeros(()), np.zeros((2, 3, 6, 6), complex), np.zeros((2, 3, 6, 6), bool),
                     np.zeros((2, 3, 6, 6), object), np.zeros((2, 3, 6, 6), np.int8),
                     np.zeros((2, 3, 6, 6), np.float16), np.array(["a", "b"]),
                     np.zeros((2, 3, 6, 6), np.longdouble)]),
    st.recursive(st.one_of(st.floats(allow_nan=False, width=16), small_ints, st.text(max_size=2)),
                 lambda inner: st.lists(inner, max_size=3), max_leaves=12),
    scalars,
)


def _call(function, x, w, b, kw):
    try:
        function(x, w, b, **kw)
    except (ValueError, TypeError):
        pass


FUNCTIONS = [cg.conv1d, cg.conv2d, cg.conv3d, cg.conv_transpose2d]
ALLOWED = (ValueError, TypeError)


def _quietly(call):
    """Run call(); anything but a ValueError or TypeError fails the test."""
    try:
        call()
    except ALLOWED:
        pass


def _fuzz_body(data):
    function = data.draw(st.sampled_from(FUNCTIONS + ["backward", "pool"]))
    if data.draw(st.integers(0, 3)) == 0:                  # a quarter: the other layers
        return _fuzz_other(data)
    x, w = data.draw(arrays), data.draw(arrays)
    b = data.draw(st.one_of(st.none(), arrays))
    kw = {name: data.draw(per_axis) for name in data.draw(
        st.sets(st.sampled_from(["stride", "padding", "dilation", "groups"])))}
    if data.draw(st.booleans()):
        kw["algorithm"] = data.draw(st.one_of(st.sampled_from(["fast", "reference", "gpu"]),
                                              scalars))
    if function == "backward":
        dy = data.draw(arrays)
        backward = data.draw(st.sampled_from([cg.conv2d_backward, cg.conv1d_backward,
                                              cg.conv_transpose2d_backward]))
        _quietly(lambda: backward(dy, x, w, b, **kw))
    elif function == "pool":
        pool = data.draw(st.sampled_from([pooling.max_pool2d, pooling.avg_pool2d]))
        window = [data.draw(per_axis) for _ in range(3)]
        _quietly(lambda: pool(x, *window))
        if data.draw(st.booleans()):
            backward = (pooling.max_pool2d_backward if pool is pooling.max_pool2d
                        else pooling.avg_pool2d_backward)
            _quietly(lambda: backward(data.draw(arrays), x, *window))
    else:
        if function is cg.conv_transpose2d and data.draw(st.booleans()):
            kw["output_padding"] = data.draw(per_axis)
        _call(function, x, w, b, kw)


def _fuzz_other(data):
    """cs231n's API and the nn layers: constructors, forward and backward."""
    from convgrad import cs231n, nn
    x, dy = data.draw(arrays), data.draw(arrays)
    which = data.draw(st.sampled_from(["cs231n-conv", "cs231n-pool", "cs231n-relu",
                                       "cs231n-affine", "layer"]))
    if which == "cs231n-conv":
        conv_param = data.draw(st.one_of(st.dictionaries(
            st.sampled_from(["stride", "pad", "dilation", "groups", "padding"]), per_axis),
            scalars))
        fast = data.draw(st.booleans())
        forward = cs231n.conv_forward_fast if fast else cs231n.conv_forward_naive
        backward = cs231n.conv_backward_fast if fast else cs231n.conv_backward_naive
        _quietly(lambda: backward(dy, forward(x, data.draw(arrays), data.draw(arrays),
                                              conv_param)[1]))
    elif which == "cs231n-pool":
        pool_param = data.draw(st.one_of(st.dictionaries(
            st.sampled_from(["pool_height", "pool_width", "stride", "pad"]), per_axis), scalars))
        _quietly(lambda: cs231n.max_pool_backward_naive(
            dy, cs231n.max_pool_forward_naive(x, pool_param)[1]))
        _quietly(lambda: cs231n.max_pool_backward_fast(
            dy, cs231n.max_pool_forward_fast(x, pool_param)[1]))
    elif which == "cs231n-relu":
        _quietly(lambda: cs231n.relu_backward(dy, cs231n.relu_forward(x)[1]))
    elif which == "cs231n-affine":
        _quietly(lambda: cs231n.affine_backward(dy, cs231n.affine_forward(
            x, data.draw(arrays), data.draw(arrays))[1]))
    else:
        make = data.draw(st.sampled_from([
            lambda: nn.Conv2d(*[data.draw(per_axis) for _ in range(3)],
                              stride=data.draw(per_axis), padding=data.draw(per_axis)),
            lambda: nn.ConvTranspose2d(3, 2, data.draw(per_axis), stride=data.draw(per_axis)),
            lambda: nn.MaxPool2d(data.draw(per_axis), data.draw(per_axis)),
            lambda: nn.AvgPool2d(data.draw(per_axis)),
            lambda: nn.BatchNorm2d(data.draw(per_axis)),
            lambda: nn.Linear(data.draw(per_axis), data.draw(per_axis)),
            lambda: nn.Dropout(data.draw(st.one_of(st.floats(), scalars))),
            lambda: nn.ReLU(), lambda: nn.Flatten()]))
        try:
            layer = make()
        except ALLOWED:
            return
        try:
            layer.forward(x)
        except ALLOWED:
            return
        _quietly(lambda: layer.backward(dy))


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_garbage_arguments_raise_only_value_or_type_errors(data):
    _fuzz_body(data)


@pytest.mark.slow
@settings(max_examples=20000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_garbage_arguments_long_run(data):
    _fuzz_body(data)
