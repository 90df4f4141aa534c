"""A forward that refuses leftover rows, as the course's im2col layer asserts."""
from correct_loops import conv_backward_naive  # noqa: F401
from correct_loops import conv_forward_naive as right_forward


def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param['stride'], conv_param['pad']
    H, W = x.shape[2:]
    HH, WW = w.shape[2:]
    assert (H + 2 * p - HH) % s == 0, 'height does not work'
    assert (W + 2 * p - WW) % s == 0, 'width does not work'
    return right_forward(x, w, b, conv_param)
