"""Every class of bad input gets a ValueError or TypeError naming the bad value.

ERRORS is the table behind docs/errors.md: one row per class of bad input, with the
call, the exception type and fragments the message must contain (the bad value and
what is allowed). test_docs_table_lists_every_row keeps the two in step.
"""
import re
from pathlib import Path

import numpy as np
import pytest

import convgrad as cg
from convgrad import nn
from convgrad.apps.digits import TrainingDivergedError

x4 = np.zeros((2, 3, 8, 8))
w4 = np.zeros((4, 3, 3, 3))
dy4 = np.zeros((2, 4, 6, 6))
xt = np.zeros((2, 3, 4, 4))           # conv_transpose2d input, C_in = 3
wt = np.zeros((3, 2, 3, 3))           # (C_in, C_out/groups, kh, kw)


def conv(**kw):
    args = dict(x=x4, w=w4)
    args.update(kw)
    return lambda: cg.conv2d(**args)


def tconv(**kw):
    args = dict(x=xt, w=wt)
    args.update(kw)
    return lambda: cg.conv_transpose2d(**args)


INF, NAN = float("inf"), float("nan")


def _tensor_requiring_grad():
    import torch
    return torch.zeros(2, 3, 8, 8, requires_grad=True)


def _params():
    return [nn.Parameter(np.zeros(2))]


def _set_lr_nan():
    opt = nn.SGD(_params(), lr=0.1)
    opt.lr = NAN                                   # as a schedule would


def _train_diverging():
    pytest.importorskip("sklearn")
    import tempfile
    from convgrad.apps import digits
    with tempfile.TemporaryDirectory() as folder:
        digits.train(folder, epochs=1, lr=1e38, optimizer="sgd", progress=False,
                     echo=lambda line: None)


def _model_file(make):
    """nn.load of a hostile file, built by tests/hostile_files.py in a temporary folder."""
    def call():
        import os
        import tempfile
        import hostile_files
        model = nn.Sequential(nn.Conv2d(1, 3, 3, rng=0), nn.Flatten(), nn.Linear(12, 2, rng=0))
        state = {k: np.array(v) for k, v in model.state_dict().items()}
        with tempfile.TemporaryDirectory() as folder:
            here = os.getcwd()
            os.chdir(folder)                       # the message names 'model.npz' only
            try:
                make(hostile_files, "model.npz", state)
                nn.load(model, "model.npz")
            finally:
                os.chdir(here)
    return call


ERRORS = [
    # id, call, exception, fragments of the message
    ("x-ndim", conv(x=np.zeros((8, 8))), ValueError, ["x must be 4-D", "(N, C, H, W)", "3-D (C, H, W)", "2-D", "(8, 8)"]),
    ("w-ndim", conv(w=np.zeros((4, 3, 3))), ValueError, ["w must be 4-D", "(4, 3, 3)"]),
    ("conv1d-given-2d", lambda: cg.conv1d(x4, w4), ValueError, ["x must be 3-D", "(N, C, L)"]),
    ("channel-mismatch", conv(w=np.zeros((4, 2, 3, 3))), ValueError, ["C=3", "(4, 2, 3, 3)", "C / groups = 3"]),
    ("groups-not-dividing-C", conv(x=np.zeros((2, 4, 8, 8)), w=np.zeros((6, 2, 3, 3)), groups=3), ValueError, ["groups=3", "input channels C (4)", "divisors of 4"]),
    ("groups-not-dividing-F", conv(x=np.zeros((2, 4, 8, 8)), w=np.zeros((6, 1, 3, 3)), groups=4), ValueError, ["groups=4", "number of filters F (6)"]),
    ("kernel-larger-than-input", conv(x=np.zeros((1, 3, 4, 4)), dilation=2), ValueError, ["effective size 5", "padded input (4 + 0 + 0 = 4)", "along H"]),
    ("stride-zero", conv(stride=0), ValueError, ["stride", "positive int", "got 0"]),
    ("stride-negative", conv(stride=(1, -2)), ValueError, ["stride", "(1, -2)"]),
    ("stride-float", conv(stride=1.5), TypeError, ["stride", "1.5", "float"]),
    ("stride-bool", conv(stride=True), TypeError, ["stride", "True", "bool"]),
    ("stride-length", conv(stride=(1, 2, 3)), ValueError, ["stride has 3 entries", "tuple of 2"]),
    ("stride-string", conv(stride="2"), TypeError, ["stride", "'2'", "str"]),
    ("dilation-zero", conv(dilation=(0, 1)), ValueError, ["dilation", "(0, 1)"]),
    ("dilation-float", conv(dilation=(1, 2.0)), TypeError, ["dilation", "2.0", "float"]),
    ("dilation-bool", conv(dilation=False), TypeError, ["dilation", "False (bool)"]),
    ("dilation-negative", conv(dilation=-1), ValueError, ["dilation", "positive int", "got -1"]),
    ("dilation-length", conv(dilation=(1,)), ValueError, ["dilation has 1 entries", "tuple of 2"]),
    ("groups-zero", conv(groups=0), ValueError, ["groups", "positive int", "got 0"]),
    ("groups-float", conv(groups=1.0), TypeError, ["groups", "1.0"]),
    ("groups-bool", conv(groups=True), TypeError, ["groups", "True"]),
    ("padding-negative", conv(padding=-1), ValueError, ["padding", "-1", "negative"]),
    ("padding-negative-pair", conv(padding=((1, -1), (0, 0))), ValueError, ["padding", "negative"]),
    ("padding-unknown-string", conv(padding="full"), ValueError, ["'full'", "'same' or 'valid'"]),
    ("padding-wrong-case", conv(padding="SAME"), ValueError, ["'SAME'", "did you mean 'same'"]),
    ("padding-length", conv(padding=(1, 2, 3)), ValueError, ["padding has 3 entries", "(lo, hi) pairs"]),
    ("padding-bad-pair", conv(padding=((1, 2, 3), (0, 0))), ValueError, ["(1, 2, 3) is not a (lo, hi) pair"]),
    ("padding-float", conv(padding=1.5), TypeError, ["padding", "1.5"]),
    ("padding-1d-flat-pair", lambda: cg.conv1d(np.zeros((1, 1, 5)), np.zeros((1, 1, 2)), padding=(1, 2)), ValueError, ["2 entries", "((1, 2),)"]),
    ("transpose-same-with-output-padding", tconv(padding="same", stride=2, output_padding=1), ValueError, ["output_padding=(1, 1)", "padding='same'"]),
    ("transpose-output-padding-too-big", tconv(stride=2, output_padding=2), ValueError, ["output_padding=2", "stride (2)", "dilation (1)"]),
    ("transpose-output-padding-pair", tconv(stride=2, output_padding=((0, 1), (0, 0))), ValueError, ["output_padding", "one non-negative int per axis"]),
    ("transpose-channel-mismatch", tconv(w=np.zeros((2, 2, 3, 3))), ValueError, ["C_in=3", "w.shape[0]=2", "(C_in, C_out/groups"]),
    ("transpose-output-too-small", tconv(padding=4), ValueError, ["would have size -2", "padding"]),
    ("bias-shape", conv(b=np.zeros(5)), ValueError, ["b must have shape (4,)", "got shape (5,)"]),
    ("bias-2d", conv(b=np.zeros((4, 1))), ValueError, ["b must have shape (4,)", "(4, 1)"]),
    ("bias-complex", conv(b=np.zeros(4, complex)), TypeError, ["b has dtype complex128 (complex numbers)"]),
    ("transpose-bias-shape", tconv(b=np.zeros(3)), ValueError, ["b must have shape (2,)", "C_out"]),
    ("dy-shape", lambda: cg.conv2d_backward(np.zeros((2, 4, 5, 5)), x4, w4), ValueError, ["dy must have the output's shape (2, 4, 6, 6)", "(2, 4, 5, 5)"]),
    ("dy-dtype", lambda: cg.conv2d_backward(dy4.astype(complex), x4, w4), TypeError, ["dy has dtype complex128 (complex numbers)"]),
    ("dy-none", lambda: cg.conv2d_backward(None, x4, w4), TypeError, ["dy must be an array", "None"]),
    ("x-string", conv(x="image"), TypeError, ["x must be an array of floats", "'image'"]),
    ("x-none", conv(x=None), TypeError, ["x must be an array of floats, got None"]),
    ("x-mixed-list", conv(x=[[[[1.0, "a"]]]]), TypeError, ["x has dtype <U32 (strings)"]),
    ("x-ragged-list", conv(x=[[[[1.0, 2.0], [1.0]]]]), ValueError, ["x could not be read as an array", "ragged"]),
    ("x-object", conv(x=np.zeros((2, 3, 8, 8), dtype=object)), TypeError, ["x has dtype object (Python objects)"]),
    ("x-complex", conv(x=x4.astype(complex)), TypeError, ["x has dtype complex128 (complex numbers)", "float16, float32, float64"]),
    ("x-bool", conv(x=x4.astype(bool)), TypeError, ["x has dtype bool (booleans)"]),
    ("x-longdouble", conv(x=x4.astype(np.longdouble)), TypeError, ["supported: float16, float32, float64"]),
    ("x-empty-spatial", conv(x=np.zeros((2, 3, 0, 8))), ValueError, ["empty spatial axes (H)", "at least 1"]),
    ("x-no-channels", conv(x=np.zeros((2, 0, 8, 8)), w=np.zeros((4, 0, 3, 3))), ValueError, ["no channels (C = 0)"]),
    ("w-no-filters", conv(w=np.zeros((0, 3, 3, 3))), ValueError, ["no filters (F = 0)"]),
    ("w-empty-kernel", conv(w=np.zeros((4, 3, 0, 3))), ValueError, ["empty kernel (H)"]),
    ("algorithm-unknown", conv(algorithm="gpu"), ValueError, ["conv2d: algorithm='gpu'", "'auto', 'fast', 'winograd', 'winograd4', 'winograd7', 'reference'"]),
    ("x-masked", conv(x=np.ma.masked_array(x4, mask=x4 > 0)), TypeError, ["x is a masked array", "would ignore its mask", "x.filled(value)"]),
    ("x-tensor-requires-grad", lambda: cg.conv2d(_tensor_requiring_grad(), w4), TypeError, ["x is a torch.Tensor", "requires grad", "x.detach().cpu().numpy()"]),
    ("layer-kernel-too-large", lambda: nn.Conv2d(3, 4, 2**40), MemoryError, ["Conv2d: the weight of shape (4, 3, 1099511627776, 1099511627776)", "would need"]),
    ("layer-dilation-too-large", lambda: nn.Conv2d(3, 4, 3, dilation=2**62), MemoryError, ["Conv2d: the smallest input it accepts", "9223372036854775809", "would need"]),
    ("linear-too-large", lambda: nn.Linear(2**40, 2**40), MemoryError, ["Linear: the weight of shape (1099511627776, 1099511627776)", "would need"]),
    ("batchnorm-eps-inf", lambda: nn.BatchNorm2d(3, eps=INF), ValueError, ["BatchNorm2d: eps must be a positive float, got inf"]),
    ("optimizer-lr-inf", lambda: nn.SGD(_params(), lr=INF), ValueError, ["SGD: lr must be a finite number >= 0.0, got inf"]),
    ("optimizer-lr-nan", lambda: nn.Adam(_params(), lr=NAN), ValueError, ["Adam: lr must be a finite number >= 0.0, got nan"]),
    ("optimizer-lr-negative", lambda: nn.SGD(_params(), lr=-0.1), ValueError, ["SGD: lr must be >= 0.0, got -0.1"]),
    ("optimizer-lr-set-nan", _set_lr_nan, ValueError, ["SGD: lr must be a finite number", "got nan"]),
    ("optimizer-momentum-nan", lambda: nn.SGD(_params(), lr=0.1, momentum=NAN), ValueError, ["SGD: momentum must be a finite number", "got nan"]),
    ("train-loss-nan", _train_diverging, TrainingDivergedError, ["training diverged: the loss became nan at step 2", "nothing was written", "smaller learning rate than lr=1e+38"]),
    ("model-file-zip-bomb", _model_file(lambda H, p, s: H.make_bomb(p, s)), nn.ModelFileError, ["unexpected key 'junk' (shape (268435440,))"]),
    ("model-file-huge-header", _model_file(lambda H, p, s: H.make_huge_header(p, s, "2.weight")), nn.ModelFileError, ["entry '2.weight' declares shape (10000000, 10000000)"]),
    ("model-file-nested-metadata", _model_file(lambda H, p, s: H.make_nested_metadata(p, s)), nn.ModelFileError, ["'__metadata__' is JSON nested too deeply"]),
    ("model-file-lying-size", _model_file(lambda H, p, s: H.make_wrong_sizes(p, s, "2.weight", size_delta=64)), nn.ModelFileError, ["truncated or corrupted", "'2.weight'"]),
    ("model-file-duplicate-names", _model_file(lambda H, p, s: H.make_duplicate(p, s, "0.bias")), nn.ModelFileError, ["two members named '0.bias.npy'"]),
    ("model-file-too-many-members", _model_file(lambda H, p, s: H.make_many_members(p, 20_000)), nn.ModelFileError, ["claims 20,000 members", "10,000 allowed"]),
    ("model-file-values-beyond-dtype", _model_file(lambda H, p, s: H.make_overflowing_values(p, s, "2.bias")), nn.ModelFileError, ["key '2.bias' holds 1 value beyond the range of the model's dtype float32"]),
]


@pytest.mark.parametrize("call,error,fragments", [r[1:] for r in ERRORS], ids=[r[0] for r in ERRORS])
def test_bad_input_raises_clear_error(call, error, fragments):
    with pytest.raises(error) as info:
        call()
    assert type(info.value) is error   # not a subclass from deep inside NumPy
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_ids_unique():
    ids = [r[0] for r in ERRORS]
    assert len(ids) == len(set(ids))
