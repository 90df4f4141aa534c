"""The engines: each computes the three linear maps of one convolution geometry.

    forward(x, w, g)       y  = A(w) x          (N, C, *in)  -> (N, F, *out)
    grad_input(dy, w, g)   dx = A(w)^T dy       (N, F, *out) -> (N, C, *in)
    grad_weight(dy, x, g)  dw = d<dy, A(w) x>/dw               -> (F, C/G, *K)

:mod:`.reference` runs them as loops that read like the equations (docs/math.md),
:mod:`.fast` as im2col + GEMM on BLAS over the columns built by :mod:`.lowering` (or,
for small maps, :mod:`.channels_last`; for 2-D stride-1 forward passes and input
gradients, :mod:`.kernel_rows`), planned within the memory budget by :mod:`.plan`,
optionally reusing a layer's forward columns (:mod:`.columns`); :mod:`.winograd` as
Winograd F(2x2, 3x3), :mod:`.winograd4` as F(4x4, 3x3) and :mod:`.winograd7` as F(7x7,
3x3) (both on :mod:`.winograd_mxm`, tile transforms in :mod:`.winograd_tiles`) for 3x3
stride-1 2-D geometries; :mod:`.depthwise` as banded matrix products for 2-D depthwise
layers (its layout in :mod:`.depthwise_layout`); and :mod:`.auto` picks, per geometry
and map, the one measured fastest. An engine may also offer

    backward(dy, x, w, g, need_dx, need_dw)   (dx, dw) in one call

(:mod:`.auto`'s, for the depthwise engine's, which lays dy out once for both);
:mod:`convgrad.functional` calls it where it exists, else grad_weight then grad_input.
:mod:`convgrad.functional` chooses the engine and combines the maps.
"""
