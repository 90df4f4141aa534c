"""A correct backward that scales dout in place (and puts it back wrong)."""
from correct_loops import conv_backward_naive as right_backward
from correct_loops import conv_forward_naive  # noqa: F401


def conv_backward_naive(dout, cache):
    result = right_backward(dout, cache)
    dout *= 2
    return result
