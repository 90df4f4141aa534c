"""A backward that never returns."""
from correct_loops import conv_forward_naive  # noqa: F401


def conv_backward_naive(dout, cache):
    while True:
        pass
