"""Which engine computes a convolution: the ``algorithm`` keyword, checked.

'auto' lets convgrad choose per geometry (:mod:`convgrad.engine.auto`), 'fast' is
im2col + GEMM (:mod:`convgrad.engine.fast`), 'winograd' Winograd F(2x2, 3x3) for 2-D 3x3
stride-1 convolutions (:mod:`convgrad.engine.winograd`), 'winograd4' Winograd F(4x4, 3x3)
for the same ones (:mod:`convgrad.engine.winograd4`), 'winograd7' F(7x7, 3x3) for them
in float64 (:mod:`convgrad.engine.winograd7`), 'reference' the loops that read
like the equations (:mod:`convgrad.engine.reference`).
"""
from __future__ import annotations

__all__ = ["ALGORITHMS", "check_algorithm"]

ALGORITHMS = ("auto", "fast", "winograd", "winograd4", "winograd7", "reference")


def check_algorithm(algorithm, op: str = "conv") -> str:
    """``algorithm`` if it is one of :data:`ALGORITHMS`, else a ValueError listing them."""
    if not isinstance(algorithm, str) or algorithm not in ALGORITHMS:
        raise ValueError(f"{op}: algorithm={algorithm!r} is not known; expected one of "
                         f"{', '.join(repr(a) for a in ALGORITHMS)}")
    return algorithm
