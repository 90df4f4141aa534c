"""The docstrings of :mod:`convgrad.functional`, one template per family, filled per 1/2/3-D.

Kept apart so that functional.py shows the arithmetic on one screen. Every Examples
section is a doctest (tests/test_doctests.py runs them).
"""
from __future__ import annotations

_CONV = """{nd}-D convolution, a cross-correlation (as in PyTorch): y = x * w + b.

    {formula}

    where xp is x padded (with zeros, or by ``padding_mode``),
    {letters} the stride and dilation, G = groups, g(f) = f // (F/G) the group
    of filter f, and c runs over that group's C/G channels
    (docs/math.md#the-forward-index-map).

    Shape:
        x: {x}, or unbatched {xu}    w: {w}    b: (F,) or None
        y: {y} (unbatched: {yu}), with
            {out}

    Args:
        stride, dilation: a positive int, or one per spatial axis.
        padding: an int, one int per axis, one (lo, hi) pair per axis, 'valid', or 'same'
            (output = ceil(in / stride) at any stride, the odd pixel after).
        groups: splits C and F into this many independent convolutions (groups = C is
            depthwise).
        algorithm: 'auto' (the fastest measured for the geometry), 'fast' (im2col + BLAS),
            'winograd' (F(2x2, 3x3): 2-D 3x3 stride 1 only), 'winograd4' (F(4x4, 3x3):
            the same geometries), 'winograd7' (F(7x7, 3x3): the same, float64 only) or
            'reference' (plain loops).
        padding_mode: what the padding holds, PyTorch's modes: 'zeros' (default),
            'reflect' (mirrored, the edge not repeated; padding < size), 'replicate' (the
            edge repeated) or 'circular' (wrapped around; padding <= size).

    Returns y in NumPy's promotion of the inputs' dtypes (float32 in, float32 out; a uint8
    x with float32 w gives float32, integers alone float64).
    Raises ValueError or TypeError, naming the bad value, for an impossible geometry.

    Examples:
{examples}"""

_BACKWARD = """Gradients of :func:`conv{nd}d`: returns (dx, dw, db) for the upstream dy.

    Shape:
        dy: {y}, the shape of conv{nd}d's output (unbatched: {yu})
        x: {x} or {xu}    w: {w}    b: (F,) or None
        dx, dw, db: the shapes and dtypes of x, w, b (db is None when b is None)

    The keywords are those of the forward call. dx is the transposed convolution of dy
    with the filters, dw is x correlated with dy, db is dy summed over all but F
    (docs/math.md#the-input-gradient-dx); with a padding_mode, the gradient of the
    padded border is folded back onto the entries it copied (docs/math.md#padding-modes).

    Examples:
{examples}"""

_DOUBLE = """Second-order gradients of :func:`conv{nd}d`: the backward of conv{nd}d_backward.

    Given g_dx, g_dw, g_db, the gradients of a scalar with respect to the outputs
    (dx, dw, db) of ``conv{nd}d_backward(dy, x, w, b, ...)``, returns (g_dy, g_x, g_w), its
    gradients with respect to that call's inputs (docs/math.md#second-order-gradients):

        g_dy = conv{nd}d(g_dx, w) + conv{nd}d(x, g_dw) + g_db   (same keywords, g_db per F)
        g_x  = the input gradient of dy against the filters g_dw
        g_w  = the weight gradient of dy against the input g_dx

    Each is a call of the same engine with roles swapped. The backward does not depend
    on b, so there is no g_b.

    Shape:
        g_dx: x's shape    g_dw: w's shape    g_db: (F,)  (each may be None, meaning zero;
        g_db must be None when b is None)
        dy, x, w, b: as in conv{nd}d_backward: dy {y}, x {x}
            (or unbatched: dy {yu}, x {xu})
        g_dy, g_x, g_w: the shapes and dtypes of dy, x, w

    The keywords are those of the forward call, padding_mode included. This is what
    ``torch.autograd.grad(..., create_graph=True)`` computes for a penalty on dx (the
    input-gradient penalty of WGAN-GP and R1) or for a Hessian-vector product.

    Examples:
{examples}"""

_TRANSPOSE = """{nd}-D transposed convolution, with PyTorch's semantics and weight layout.

    The adjoint of conv{nd}d with the same w: it scatters each input value through the
    filter, so with stride s it upsamples by s (docs/math.md#transposed-convolution-is-the-adjoint).

    Shape:
        x: {x}, or unbatched {xu}    w: {w}    b: (C_out,) or None
        y: {y} (unbatched: {yu}), with
            {out}

    Args:
        stride, dilation, output_padding: one int, or one per spatial axis;
            output_padding (< stride or < dilation) picks among the output sizes that
            give the same conv{nd}d output size.
        padding: an int, one per axis, or (lo, hi) pairs: removed from the output's
            borders; or 'valid' (none) or 'same' (output = in * stride, TensorFlow's
            convention; output_padding must then be 0). Zeros only: there is no
            padding_mode, as in PyTorch.
        groups: as in conv{nd}d; w is (C_in, C_out/groups, *kernel).
        algorithm: 'auto', 'fast', 'winograd', 'winograd4' or 'winograd7' (3x3
            stride 1, 2-D; winograd7 float64 only) or 'reference'.

    Examples:
{examples}"""

_TRANSPOSE_BACKWARD = """Gradients of :func:`conv_transpose{nd}d`: (dx, dw, db) for dy.

    Shape:
        dy: {y}, the shape of conv_transpose{nd}d's output (unbatched: {yu})
        dx, dw, db: the shapes and dtypes of x, w, b (db is None when b is None)

    dx is the ordinary convolution of dy with w; dw correlates dy with x.

    Examples:
{examples}"""

_TRANSPOSE_DOUBLE = """Second-order gradients of :func:`conv_transpose{nd}d`.

    Given g_dx, g_dw, g_db, the gradients of a scalar with respect to the outputs
    (dx, dw, db) of ``conv_transpose{nd}d_backward(dy, x, w, b, ...)``, returns
    (g_dy, g_x, g_w), its gradients with respect to dy, x and w
    (docs/math.md#second-order-gradients):

        g_dy = conv_transpose{nd}d(g_dx, w) + conv_transpose{nd}d(x, g_dw) + g_db
        g_x  = conv{nd}d(dy, g_dw)                   (the same keywords)
        g_w  = the weight gradient of g_dx against dy

    Shape:
        g_dx: x's shape    g_dw: w's shape    g_db: (C_out,)  (each may be None = zero)
        dy: {y}    x: {x}
            (or unbatched: dy {yu}, x {xu})
        g_dy, g_x, g_w: the shapes and dtypes of dy, x, w

    Examples:
{examples}"""

_SHAPES = {
    1: dict(x="(N, C, L)", xu="(C, L)", w="(F, C/groups, K)", y="(N, F, L')", yu="(F, L')",
            out="L' = floor((L + pad_lo + pad_hi - dilation*(K-1) - 1) / stride) + 1",
            formula="y[n, f, i] = b[f] + sum_{c, k} w[f, c, k] * xp[n, g(f)*C/G + c, "
                    "s*i + d*k]", letters="s and d"),
    2: dict(x="(N, C, H, W)", xu="(C, H, W)", w="(F, C/groups, HH, WW)", y="(N, F, H', W')",
            yu="(F, H', W')",
            out="H' = floor((H + pad_top + pad_bottom - dilation*(HH-1) - 1) / stride) + 1",
            formula="y[n, f, i, j] = b[f] + sum_{c, k, l} w[f, c, k, l]\n"
                    "                     * xp[n, g(f)*C/G + c, sh*i + dh*k, sw*j + dw*l]",
            letters="(sh, sw) and (dh, dw)"),
    3: dict(x="(N, C, D, H, W)", xu="(C, D, H, W)", w="(F, C/groups, KD, KH, KW)",
            y="(N, F, D', H', W')", yu="(F, D', H', W')",
            out="D' = floor((D + pad_lo + pad_hi - dilation*(KD-1) - 1) / stride) + 1",
            formula="y[n, f, t, i, j] = b[f] + sum_{c, m, k, l} w[f, c, m, k, l]\n"
                    "        * xp[n, g(f)*C/G + c, sd*t + dd*m, sh*i + dh*k, sw*j + dw*l]",
            letters="(sd, sh, sw) and (dd, dh, dw)"),
}

_TRANSPOSE_SHAPES = {
    1: dict(x="(N, C_in, L)", xu="(C_in, L)", w="(C_in, C_out/groups, K)",
            y="(N, C_out, L_out)", yu="(C_out, L_out)",
            out="L_out = (L-1)*stride - pad_lo - pad_hi + dilation*(K-1) + output_padding + 1"),
    2: dict(x="(N, C_in, H, W)", xu="(C_in, H, W)", w="(C_in, C_out/groups, HH, WW)",
            y="(N, C_out, H_out, W_out)", yu="(C_out, H_out, W_out)",
            out="H_out = (H-1)*stride - pad_top - pad_bottom + dilation*(HH-1) "
                "+ output_padding + 1"),
    3: dict(x="(N, C_in, D, H, W)", xu="(C_in, D, H, W)", w="(C_in, C_out/groups, KD, KH, KW)",
            y="(N, C_out, D_out, H_out, W_out)", yu="(C_out, D_out, H_out, W_out)",
            out="D_out = (D-1)*stride - pad_lo - pad_hi + dilation*(KD-1) + output_padding + 1"),
}

# ----------------------------------------------------------------------------------------
# Examples (doctests): small exact numbers, so that the output shows what the map does

_EXAMPLES = {
    "conv1d": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[1., 2., 4., 8., 16.]]])       # (N, C, L) = (1, 1, 5)
        >>> w = np.array([[[1., 0., -1.]]])               # (F, C, K) = (1, 1, 3)
        >>> cg.conv1d(x, w)                               # y[i] = x[i] - x[i + 2]
        array([[[ -3.,  -6., -12.]]])
        >>> cg.conv1d(x, w, padding=1, padding_mode="circular")   # x[-1] = x[4], x[5] = x[0]
        array([[[ 14.,  -3.,  -6., -12.,   7.]]])
        >>> cg.conv1d(x[0], w, stride=2).shape            # unbatched: (C, L) -> (F, L')
        (1, 2)
""",
    "conv2d": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.arange(16.).reshape(1, 1, 4, 4)        # (N, C, H, W)
        >>> w = np.ones((1, 1, 2, 2))                     # (F, C, HH, WW): 2x2 window sums
        >>> cg.conv2d(x, w, stride=2)
        array([[[[10., 18.],
                 [42., 50.]]]])
        >>> cg.conv2d(x, w, b=np.array([0.5]), stride=2, padding=((0, 1), (1, 0)))[0, 0]
        array([[ 4.5, 14.5],
               [20.5, 46.5]])
        >>> cg.conv2d(x, w, padding="same", padding_mode="replicate")[0, 0, 3]   # last row
        array([50., 54., 58., 60.])
        >>> cg.conv2d(x[0], w, stride=3, padding="same").shape    # unbatched, ceil(4 / 3)
        (1, 2, 2)
""",
    "conv3d": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.ones((2, 3, 4, 5, 6))                  # (N, C, D, H, W)
        >>> w = np.ones((6, 3, 3, 3, 3))                  # (F, C/groups, KD, KH, KW)
        >>> y = cg.conv3d(x, w, padding=1)
        >>> y.shape, float(y[0, 0, 0, 0, 0]), float(y[0, 0, 1, 1, 1])  # corner: 2*2*2 taps x 3
        ((2, 6, 4, 5, 6), 24.0, 81.0)
        >>> cg.conv3d(x, np.ones((6, 1, 1, 2, 2)), stride=(1, 2, 2), groups=3).shape
        (2, 6, 4, 2, 3)
""",
    "conv1d_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[1., 2., 4., 8., 16.]]])       # (N, C, L)
        >>> w = np.array([[[1., 0., -1.]]])               # (F, C, K)
        >>> dy = np.array([[[1., 10., 100.]]])            # dL/dy, conv1d's output shape
        >>> dx, dw, db = cg.conv1d_backward(dy, x, w, b=np.zeros(1))
        >>> dx                                            # dy scattered through w
        array([[[   1.,   10.,   99.,  -10., -100.]]])
        >>> dw                                            # x correlated with dy
        array([[[ 421.,  842., 1684.]]])
        >>> db
        array([111.])
""",
    "conv2d_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.arange(16.).reshape(1, 1, 4, 4)        # (N, C, H, W)
        >>> w = np.ones((1, 1, 2, 2))                     # (F, C, HH, WW)
        >>> dy = np.array([[[[1., 2.], [3., 4.]]]])       # (N, F, H', W') at stride 2
        >>> dx, dw, db = cg.conv2d_backward(dy, x, w, stride=2)
        >>> dx[0, 0]                                      # each input read by one window
        array([[1., 1., 2., 2.],
               [1., 1., 2., 2.],
               [3., 3., 4., 4.],
               [3., 3., 4., 4.]])
        >>> dw[0, 0], db                                  # no bias, no db
        (array([[ 68.,  78.],
               [108., 118.]]), None)
        >>> dx, _, _ = cg.conv2d_backward(dy, x, w, stride=2, padding=((1, 0), (0, 0)),
        ...                               padding_mode="reflect")
        >>> dx[0, 0, :2]                                  # row -1 copied row 1: folded back
        array([[1., 1., 2., 2.],
               [4., 4., 6., 6.]])
""",
    "conv3d_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x, w = np.ones((1, 2, 3, 3, 3)), np.ones((4, 2, 2, 2, 2))
        >>> dy = np.ones((1, 4, 2, 2, 2))                 # conv3d(x, w)'s shape
        >>> dx, dw, db = cg.conv3d_backward(dy, x, w, b=np.zeros(4))
        >>> float(dx[0, 0, 0, 0, 0]), float(dx[0, 0, 1, 1, 1])  # in 1 and 8 windows, 4 filters
        (4.0, 32.0)
        >>> dw.shape, db
        ((4, 2, 2, 2, 2), array([8., 8., 8., 8.]))
""",
    "conv1d_double_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[1., 2., 4., 8.]]]); w = np.array([[[1., -1.]]])
        >>> dy = np.ones((1, 1, 3))                       # L = sum(y): dL/dy = 1
        >>> dx, dw, _ = cg.conv1d_backward(dy, x, w)      # dx = dL/dx
        >>> dx
        array([[[ 1.,  0.,  0., -1.]]])
        >>> # the penalty P = ||dx||^2 (as in WGAN-GP): dP/d(dx) = 2 dx
        >>> g_dy, g_x, g_w = cg.conv1d_double_backward(2 * dx, None, None, dy, x, w)
        >>> g_w                                           # dP/dw
        array([[[ 2., -2.]]])
""",
    "conv2d_double_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.arange(9.).reshape(1, 1, 3, 3)         # (N, C, H, W)
        >>> w = np.array([[[[1., 2.], [3., 4.]]]])        # (F, C, HH, WW)
        >>> dy = np.ones((1, 1, 2, 2))                    # L = sum(y)
        >>> dx, dw, _ = cg.conv2d_backward(dy, x, w)
        >>> # the R1 / WGAN-GP penalty P = ||dL/dx||^2: its gradient with respect to w
        >>> g_dy, g_x, g_w = cg.conv2d_double_backward(2 * dx, None, None, dy, x, w)
        >>> g_w[0, 0]
        array([[36., 42.],
               [48., 54.]])
        >>> # a mixed Hessian-vector product of L: d/dx <dL/dw, v>, direction v
        >>> _, Hv, _ = cg.conv2d_double_backward(None, np.ones_like(w), None, dy, x, w)
        >>> Hv[0, 0]
        array([[1., 2., 1.],
               [2., 4., 2.],
               [1., 2., 1.]])
""",
    "conv3d_double_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x, w = np.ones((1, 2, 3, 3, 3)), np.ones((4, 2, 2, 2, 2))
        >>> dy = np.ones((1, 4, 2, 2, 2))
        >>> g_dy, g_x, g_w = cg.conv3d_double_backward(None, np.ones_like(w), None, dy, x, w)
        >>> float(g_dy[0, 0, 0, 0, 0])                    # conv3d(x, g_dw): 16 ones summed
        16.0
        >>> float(g_x[0, 0, 1, 1, 1]), g_w.shape          # conv3d_backward's dx, w = g_dw
        (32.0, (4, 2, 2, 2, 2))
""",
    "conv_transpose1d": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[1., 2.]]])                    # (N, C_in, L)
        >>> w = np.array([[[1., 10., 100.]]])             # (C_in, C_out/groups, K)
        >>> cg.conv_transpose1d(x, w, stride=2)           # each x[i] scatters x[i] * w
        array([[[  1.,  10., 102.,  20., 200.]]])
        >>> cg.conv_transpose1d(x, w, stride=2, padding=1, output_padding=1)
        array([[[ 10., 102.,  20., 200.]]])
""",
    "conv_transpose2d": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[[1., 2.], [3., 4.]]]])        # (N, C_in, H, W)
        >>> w = np.ones((1, 1, 2, 2))                     # (C_in, C_out/groups, HH, WW)
        >>> cg.conv_transpose2d(x, w, stride=2)[0, 0]     # each value spread over a 2x2 block
        array([[1., 1., 2., 2.],
               [1., 1., 2., 2.],
               [3., 3., 4., 4.],
               [3., 3., 4., 4.]])
        >>> cg.conv_transpose2d(x[0], np.ones((1, 3, 3, 3)), stride=2, padding="same").shape
        (3, 4, 4)
""",
    "conv_transpose3d": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.ones((2, 4, 2, 3, 3))                  # (N, C_in, D, H, W)
        >>> w = np.ones((4, 1, 2, 2, 2))                  # (C_in, C_out/groups, KD, KH, KW)
        >>> cg.conv_transpose3d(x, w, stride=2, groups=2).shape
        (2, 2, 4, 6, 6)
""",
    "conv_transpose1d_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[1., 2.]]]); w = np.array([[[1., 10., 100.]]])
        >>> dy = np.array([[[1., 0., 0., 0., 1.]]])       # conv_transpose1d's output shape
        >>> dx, dw, db = cg.conv_transpose1d_backward(dy, x, w, stride=2)
        >>> dx, dw                                        # dx = conv1d(dy, w, stride=2)
        (array([[[  1., 100.]]]), array([[[1., 0., 2.]]]))
""",
    "conv_transpose2d_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[[1., 2.], [3., 4.]]]]); w = np.ones((1, 1, 2, 2))
        >>> dy = np.arange(16.).reshape(1, 1, 4, 4)       # conv_transpose2d's output shape
        >>> dx, dw, db = cg.conv_transpose2d_backward(dy, x, w, b=np.zeros(1), stride=2)
        >>> dx[0, 0]                                      # = conv2d(dy, w, stride=2)
        array([[10., 18.],
               [42., 50.]])
        >>> dw[0, 0], db
        (array([[ 68.,  78.],
               [108., 118.]]), array([120.]))
""",
    "conv_transpose3d_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x, w = np.ones((1, 2, 2, 2, 2)), np.ones((2, 3, 2, 2, 2))
        >>> dy = np.ones((1, 3, 4, 4, 4))                 # conv_transpose3d(x, w, stride=2)
        >>> dx, dw, db = cg.conv_transpose3d_backward(dy, x, w, stride=2)
        >>> float(dx[0, 0, 0, 0, 0]), dw.shape            # 3 output channels x 8 taps
        (24.0, (2, 3, 2, 2, 2))
""",
    "conv_transpose1d_double_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[1., 2.]]]); w = np.array([[[1., 10., 100.]]])
        >>> dy = np.ones((1, 1, 5))
        >>> g_dy, g_x, g_w = cg.conv_transpose1d_double_backward(
        ...     np.ones_like(x), None, None, dy, x, w, stride=2)
        >>> g_dy                                          # conv_transpose1d(g_dx, w)
        array([[[  1.,  10., 101.,  10., 100.]]])
        >>> g_w                                           # g_dx correlated with dy
        array([[[2., 2., 2.]]])
""",
    "conv_transpose2d_double_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x = np.array([[[[1., 2.], [3., 4.]]]]); w = np.ones((1, 1, 2, 2))
        >>> dy = np.arange(16.).reshape(1, 1, 4, 4)
        >>> g_dy, g_x, g_w = cg.conv_transpose2d_double_backward(
        ...     None, np.ones_like(w), None, dy, x, w, stride=2)
        >>> g_x[0, 0]                                     # conv2d(dy, g_dw, stride=2)
        array([[10., 18.],
               [42., 50.]])
        >>> g_dy[0, 0, 0], bool(g_w.any())                # g_w is zero: g_dx = None
        (array([1., 1., 2., 2.]), False)
""",
    "conv_transpose3d_double_backward": """
        >>> import numpy as np, convgrad as cg
        >>> x, w = np.ones((1, 2, 2, 2, 2)), np.ones((2, 3, 2, 2, 2))
        >>> dy = np.ones((1, 3, 4, 4, 4))
        >>> g_dy, g_x, g_w = cg.conv_transpose3d_double_backward(
        ...     np.ones_like(x), None, np.ones(3), dy, x, w, b=np.zeros(3), stride=2)
        >>> float(g_dy[0, 0, 0, 0, 0]), float(g_w[0, 0, 0, 0, 0])  # 2 channels + g_db; 8
        (3.0, 8.0)
""",
}

_TEMPLATES = {"conv{nd}d": (_CONV, _SHAPES), "conv{nd}d_backward": (_BACKWARD, _SHAPES),
              "conv{nd}d_double_backward": (_DOUBLE, _SHAPES),
              "conv_transpose{nd}d": (_TRANSPOSE, _TRANSPOSE_SHAPES),
              "conv_transpose{nd}d_backward": (_TRANSPOSE_BACKWARD, _TRANSPOSE_SHAPES),
              "conv_transpose{nd}d_double_backward": (_TRANSPOSE_DOUBLE, _TRANSPOSE_SHAPES)}


def document(namespace: dict) -> None:
    """Give every public function in ``namespace`` (functional's globals) its docstring."""
    for pattern, (template, shapes) in _TEMPLATES.items():
        for nd in (1, 2, 3):
            name = pattern.format(nd=nd)
            namespace[name].__doc__ = template.format(nd=nd, examples=_EXAMPLES[name],
                                                      **shapes[nd])
