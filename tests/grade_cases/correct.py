"""A correct layer: must pass every geometry with no diagnosis."""
from correct_loops import conv_backward_naive, conv_forward_naive  # noqa: F401
