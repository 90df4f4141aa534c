"""A derivation as readable text (SymPy's pretty printer) or as LaTeX.

    print(text(derive((4,), (2,))))
    print(latex(derive((3, 3), (2, 2))))

:func:`latex_document` wraps the LaTeX in a document that compiles on its own. All show,
in order: the case, the forward equations, the Jacobians dy/dx and dy/dw, the
loss and the chain rule, the derived dx, dw, db, and the identities of docs/math.md they
reduce to, with the rule's intermediate arrays and the verdict of the check.
"""
from __future__ import annotations

import sys

import numpy as np

from .._optional import require
from ..geometry import ConvGeometry
from .derivation import Derivation, IdentityCheck
from .identities import conv_identities
from .symbols import latex_names, symbol_grid, symbol_name, to_object_array

sp = require("sympy", "explain", "convgrad explain")

__all__ = ["describe", "text", "latex", "latex_document", "per_axis", "padding_text"]

MAX_PRINTED_COLUMNS = 25   # wider Jacobians are summarized, not printed


def per_axis(values) -> str:
    """(2, 2) -> '2', (1, 3) -> '(1, 3)': one number when every axis agrees."""
    values = tuple(values)
    return str(values[0]) if len(set(values)) == 1 else str(values)


def padding_text(pairs) -> str:
    if len(set(pairs)) == 1 and pairs[0][0] == pairs[0][1]:
        return str(pairs[0][0])
    return str(tuple(pairs))


def _crop(pairs) -> str:
    return " (negative = crop)" if any(v < 0 for pair in pairs for v in pair) else ""


def describe(g: ConvGeometry) -> str:
    """'x (4,), w (2,), stride 1, padding 0, dilation 1 -> y (3,)'."""
    return (f"x {g.in_size}, w {g.kernel_size}, stride {per_axis(g.stride)}, padding "
            f"{padding_text(g.padding)}, dilation {per_axis(g.dilation)} -> y {g.out_size}")


def _range(stem: str, shape) -> str:
    """'x1..x4' or 'x11..x33'."""
    first = symbol_name(stem, (0,) * len(shape))
    last = symbol_name(stem, tuple(n - 1 for n in shape))
    return first if first == last else f"{first}..{last}"


def _unicode() -> bool:
    encoding = (getattr(sys.stdout, "encoding", None) or "").lower().replace("-", "")
    return encoding.startswith("utf")


def _entries(a):
    """(index, entry) pairs of a SymPy Array or NumPy array, row-major."""
    return [(i, a[i]) for i in np.ndindex(*tuple(a.shape))]


def _grid(label: str, a, unicode: bool, indent: str = "  ") -> str:
    """'label = [a, b]' in 1-D; a pretty matrix under the label in 2-D."""
    shape = tuple(a.shape)
    if len(shape) == 1 or 0 in shape:
        return f"{indent}{label} = [{', '.join(sp.sstr(v) for _, v in _entries(a))}]"
    matrix = sp.Matrix(shape[0], shape[1], [v for _, v in _entries(a)])
    body = sp.pretty(matrix, use_unicode=unicode, wrap_line=False)
    pad = indent + " " * (len(label) + 3)
    lines = body.splitlines()
    middle = len(lines) // 2
    return "\n".join((indent + label + " = " if k == middle else pad) + line
                     for k, line in enumerate(lines))


def _zeros(stride) -> str:
    """'1 zero' / '2 zeros' / '(1, 2) zeros' between the entries of dy."""
    gaps = tuple(v - 1 for v in stride)
    return ("1 zero" if set(gaps) == {1} else f"{per_axis(gaps)} zeros")


def _identity_lines(check: IdentityCheck, g: ConvGeometry, unicode: bool) -> list[str]:
    ident = check.identity
    s, d = per_axis(ident.dw_dilation), per_axis(ident.dw_stride)
    general = check.rule.startswith("general")
    inserted = (f"insert stride-1 = {_zeros(g.stride)} between the entries of dy, "
                if general else "")
    lines = [
        f"dx = full correlation of dy with rot180(w): {inserted}pad by "
        f"{padding_text(ident.dx_padding)}{_crop(ident.dx_padding)}, correlate with "
        f"rot180(w) at stride 1, dilation {per_axis(g.dilation)}",
        _grid("dy spread" if general else "dy", ident.dy_spread, unicode),
        _grid("dy padded", ident.dy_full, unicode),
        _grid("rot180(w)", ident.w_rotated, unicode),
        _grid("dx", ident.dx, unicode),
        f"dw = x correlated with dy: pad x by {padding_text(ident.x_padding)}"
        f"{_crop(ident.x_padding)}, correlate with dy as a kernel dilated by {s} (the "
        f"stride) at stride {d} (the dilation)",
        _grid("x padded", ident.x_padded, unicode),
        _grid(f"dy dilated by {s}" if general else "dy", ident.dy_spread, unicode),
        _grid("dw", ident.dw, unicode),
        f"db = sum(dy) = {sp.sstr(check.db_identity)}",
    ]
    if check.holds:
        lines.append("check: derived == identity for every entry of dx, dw and db "
                     "(sympy.expand(difference) == 0): HOLDS")
    else:
        lines.append("check: the identity DOES NOT HOLD")
        lines += ["  " + m for m in check.mismatches]
    return lines


def text(d: Derivation, check: IdentityCheck | None = None, rule=conv_identities) -> str:
    """The whole derivation as plain text (unicode pretty-printing when stdout is UTF-8)."""
    _forward_only(d)
    check = check if check is not None else d.check(rule)
    g, unicode = d.geometry, _unicode()
    out = [
        f"== convgrad explain: {describe(g)}",
        f"One sample, one channel; 1-based symbols: {_range('x', g.in_size)} (input), "
        f"{_range('w', g.kernel_size)} (filter), b (bias), {_range('dy', g.out_size)} "
        f"(dL/dy, the upstream gradient).",
        "",
        "-- Forward: y = b + (x zero-padded) correlated with w, "
        "y[i] = b + sum_k w[k] * xp[stride*i + dilation*k]",
    ]
    out += [f"{symbol_name('y', i)} = {sp.sstr(e)}" for i, e in _entries(d.y)]
    out += ["", "-- Jacobians (row i: output y_i; column j: variable j, row-major order)"]
    partial = "\u2202" if unicode else "(partial)"
    for var, matrix in (("x", d.jacobian_x), ("w", d.jacobian_w)):
        name = f"{partial}y/{partial}{var}"
        if matrix.cols > MAX_PRINTED_COLUMNS:
            out.append(f"{name}: {matrix.rows} x {matrix.cols}, too wide to print "
                       f"(derive(...).jacobian_{var} holds it)")
        else:
            out.append(_grid(name, matrix, unicode, indent=""))
    out += ["", f"-- Chain rule: L = sum_i dy_i * y_i, where dy_i = {partial}L/{partial}y_i "
            f"comes from the layer above; so dx_j = {partial}L/{partial}x_j = sum_i dy_i * "
            f"J[i, j] with J = {partial}y/{partial}x, the Jacobian above: dx = J^T dy "
            f"(likewise dw with {partial}y/{partial}w); computed with sympy.diff(L, .)"]
    out += [f"{symbol_name('dx', i)} = dL/{symbol_name('dx', i)} = {sp.sstr(e)}"
            for i, e in _entries(d.dx)]
    out += [f"{symbol_name('dw', i)} = dL/{symbol_name('dw', i)} = {sp.sstr(e)}"
            for i, e in _entries(d.dw)]
    out += [f"db = dL/db = {sp.sstr(d.db)}"]
    out += ["", f"-- The identities they reduce to (docs/math.md#the-input-gradient-dx), {check.rule}"]
    out += _identity_lines(check, g, unicode)
    return "\n".join(out)


def _latex_names(d: Derivation) -> dict:
    r"""{Symbol: LaTeX}: x_{10,3} for the underscore names, and every dy entry written as
    the partial derivative it is, \tfrac{\partial L}{\partial y_{12}} (never d times y)."""
    names = d.latex_names()
    y_size = d.geometry.in_size if d.transposed else d.geometry.out_size
    names.update(latex_names(symbol_grid("y", y_size)))
    for symbol in to_object_array(d.dy).flat:
        index = symbol.name[2:]
        index = ",".join(index.split("_")[1:]) if index.startswith("_") else index
        names[symbol] = f"\\tfrac{{\\partial L}}{{\\partial y_{{{index}}}}}"
    return names


def _forward_only(d: Derivation) -> None:
    if d.transposed:
        raise ValueError("explain: the printed derivation covers the forward convolution; "
                         "a transposed one is shown by the explorer (convgrad.explain.html)")


def latex(d: Derivation, check: IdentityCheck | None = None, rule=conv_identities) -> str:
    """The derivation as LaTeX to paste: every equation in a ``\\[ ... \\]`` block (needs
    amsmath), % comments between them. dL/dy is written as partial derivatives."""
    _forward_only(d)
    check = check if check is not None else d.check(rule)
    g = d.geometry
    names = _latex_names(d)
    dy_array = "\\frac{\\partial L}{\\partial y}"

    def tex(e) -> str:
        return sp.latex(e, symbol_names=names)

    def block(body: str) -> list[str]:
        return ["\\[", body, "\\]"]

    def aligned(rows) -> list[str]:
        lines = [f"  {lhs} &= {rhs}" for lhs, rhs in rows]
        return block("\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}")

    def partial(var) -> str:
        return f"\\frac{{\\partial L}}{{\\partial {tex(var)}}}"

    def array(a) -> str:
        shape = tuple(a.shape)
        if 0 in shape:
            return "\\left[\\,\\right]"
        if len(shape) == 1:
            return tex(sp.Matrix(1, shape[0], [v for _, v in _entries(a)]))
        return tex(sp.Matrix(shape[0], shape[1], [v for _, v in _entries(a)]))

    ident = check.identity
    out = [f"% convgrad explain: {describe(g)}",
           "% Paste into a LaTeX document with \\usepackage{amsmath} (matrices wider than 10",
           "% columns need \\setcounter{MaxMatrixCols}{30}); --latex-document prints one.",
           "% Forward: y = b + (x zero-padded) correlated with w"]
    out += aligned([(tex(sp.Symbol(symbol_name("y", i))), tex(e)) for i, e in _entries(d.y)])
    out += ["% Jacobians (rows: outputs; columns: variables, row-major)"]
    for var, matrix in (("x", d.jacobian_x), ("w", d.jacobian_w)):
        if matrix.cols <= MAX_PRINTED_COLUMNS:
            out += block(f"\\frac{{\\partial y}}{{\\partial {var}}} = {tex(matrix)}")
        else:
            out.append(f"% dy/d{var}: {matrix.rows} x {matrix.cols}, too wide to print")
    out += ["% Chain rule: the loss as seen from this layer; dL/dy comes from the layer above"]
    out += block(f"L = \\sum_i \\frac{{\\partial L}}{{\\partial y_i}}\\, y_i = {tex(d.loss)}")
    out += block("\\frac{\\partial L}{\\partial x_j} = \\sum_i \\frac{\\partial L}{\\partial "
                 "y_i} \\frac{\\partial y_i}{\\partial x_j}, \\qquad \\frac{\\partial L}"
                 "{\\partial w_k} = \\sum_i \\frac{\\partial L}{\\partial y_i} \\frac{\\partial "
                 "y_i}{\\partial w_k}, \\qquad \\frac{\\partial L}{\\partial b} = \\sum_i "
                 "\\frac{\\partial L}{\\partial y_i}")
    out += aligned([(partial(d.x[i]), tex(e)) for i, e in _entries(d.dx)]
                   + [(partial(d.w[i]), tex(e)) for i, e in _entries(d.dw)]
                   + [(partial(d.b), tex(d.db))])
    out += [f"% The identities they reduce to (docs/math.md#the-input-gradient-dx): {check.rule}",
            "% \\star is cross-correlation: (a \\star k)[i] = sum_m k[m] a[stride i + dilation m]",
            f"% dx: dL/dy with {_zeros(g.stride)} inserted between entries, padded by "
            f"{padding_text(ident.dx_padding)}, correlated with rot180(w)"]
    out += block(f"\\left({dy_array}\\right)_{{\\text{{padded}}}} = {array(ident.dy_full)}")
    out += block(f"\\operatorname{{rot180}}(w) = {array(ident.w_rotated)}")
    out += block(f"\\frac{{\\partial L}}{{\\partial x}} = \\left({dy_array}\\right)_"
                 f"{{\\text{{padded}}}} \\star \\operatorname{{rot180}}(w) = {array(ident.dx)}")
    out += [f"% dw: x padded by {padding_text(ident.x_padding)} correlated with dL/dy dilated "
            f"by {per_axis(ident.dw_dilation)}, at stride {per_axis(ident.dw_stride)}"]
    out += block(f"x_{{\\text{{padded}}}} = {array(ident.x_padded)}")
    out += block(f"\\frac{{\\partial L}}{{\\partial w}} = x_{{\\text{{padded}}}} \\star "
                 f"\\left({dy_array}\\right)_{{\\text{{dilated}}}} = {array(ident.dw)}")
    out += block(f"\\frac{{\\partial L}}{{\\partial b}} = \\sum_i \\frac{{\\partial L}}"
                 f"{{\\partial y_i}} = {tex(check.db_identity)}")
    out += [f"% check: {'HOLDS' if check.holds else 'DOES NOT HOLD'}"]
    out += [f"%   {m}" for m in check.mismatches]
    return "\n".join(out)


def latex_document(d: Derivation, check: IdentityCheck | None = None,
                   rule=conv_identities) -> str:
    """:func:`latex` as a complete document: ``pdflatex`` compiles it as it is."""
    title = describe(d.geometry).replace("->", "$\\to$")
    return "\n".join([
        "\\documentclass{article}",
        "\\usepackage[a4paper,landscape,margin=1.5cm]{geometry}",
        "\\usepackage{amsmath}",
        "\\setcounter{MaxMatrixCols}{64}",
        "\\allowdisplaybreaks",
        "\\begin{document}",
        f"\\section*{{convgrad explain: {title}}}",
        "One sample, one channel. $\\partial L/\\partial y$ comes from the layer above; "
        "$\\star$ is cross-correlation. The derivation: docs/math.md in the convgrad "
        "repository.",
        latex(d, check, rule),
        "\\end{document}",
    ])
