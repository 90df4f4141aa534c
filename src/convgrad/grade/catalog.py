"""The catalog of known mistakes: stable ids, what each one is, and where the right rule is.

Each :class:`Mistake` names the output it breaks ('forward', 'dx', 'dw' or 'db') and one
or more wrong implementations from :mod:`.mistakes` (the ways people make it). A user's
wrong output is that mistake when it equals one of them on the same data. ``shape-crash``
has no values to compare: it is recognised by the user's code raising on some geometries
and not on others. The ids are stable: ``convgrad grade --json`` reports them and
docs/grade.md documents them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import mistakes as m

__all__ = ["Mistake", "CATALOG", "NOTES", "by_id", "MATH"]

MATH = "docs/math.md"


@dataclass(frozen=True)
class Mistake:
    id: str
    explanation: str            # two lines: what is wrong, and the right rule
    anchor: str                 # section of docs/math.md that derives the right rule
    variants: tuple = field(default=())   # (output, f(x, w, b, dy, s, p)) pairs
    by_values: bool = True      # False: recognised by raising, the variants only illustrate

    @property
    def outputs(self) -> tuple:
        """The outputs it breaks: some of 'forward', 'dx', 'dw', 'db'."""
        return tuple(dict.fromkeys(output for output, _ in self.variants))

    @property
    def link(self) -> str:
        return f"{MATH}#{self.anchor}"


def _each(output, *functions):
    return tuple((output, f) for f in functions)


CATALOG = (
    Mistake("no-zero-insertion",
            "dx slides the rotated filter over dy with the forward's stride instead of first\n"
            "inserting stride-1 zeros between dy's entries (a scatter that steps by 1, not s).",
            "the-input-gradient-dx", _each("dx", m.dx_no_zero_insertion)),
    Mistake("wrong-dy-padding",
            "dy is padded by pad before the rotated filter slides over it; the right amount is\n"
            "HH-1-pad (the two agree only when pad = (HH-1)/2, 'same' at stride 1).",
            "the-input-gradient-dx",
            _each("dx", m.dx_dy_padded_by_pad, m.dx_dy_padded_by_pad_uncut)),
    Mistake("no-rotation",
            "the filter is not rotated by 180 degrees (both axes flipped) for dx: dx is a full\n"
            "correlation of dy with rot180(w), i.e. the scatter of dy through w itself.",
            "the-input-gradient-dx",
            _each("dx", m.dx_unrotated, m.dx_flipped_rows_only, m.dx_flipped_columns_only)),
    Mistake("channels-not-swapped",
            "the filter's F and C axes are not swapped (or reshaped, not transposed) for dx:\n"
            "dx[n, c] sums dy[n, f] through w[f, c]; the filter bank is w.transpose(1, 0, 2, 3).",
            "the-input-gradient-dx",
            _each("dx", m.dx_channels_indexed_unswapped, m.dx_channels_reshaped)),
    Mistake("dx-not-cropped",
            "the gradient of the padded input is returned without removing the padding, or\n"
            "cropped from the wrong side; dx = dx_padded[:, :, pad:pad+H, pad:pad+W].",
            "the-input-gradient-dx",
            _each("dx", m.dx_uncropped, m.dx_cropped_top_left, m.dx_cropped_twice_from_start,
                  m.dx_cropped_minus_pad)),
    Mistake("dw-missing-stride",
            "dw reads x at i + k instead of stride*i + k: the stride is left out of dw;\n"
            "dw[f, c, k, l] = sum over n, i, j of dy[n, f, i, j] * xpad[n, c, s*i + k, s*j + l].",
            "the-weight-gradient-dw", _each("dw", m.dw_without_stride)),
    Mistake("db-wrong-axes",
            "db is summed over the wrong axes; db[f] = dy[:, f].sum(), over the batch and both\n"
            "spatial axes, one value per filter: shape (F,).",
            "the-bias-gradient-db",
            _each("db", m.db_over_spatial_only, m.db_over_all_but_batch, m.db_over_everything,
                  m.db_first_sample_only, m.db_over_batch_only)),
    Mistake("leftover-rows",
            "wrong only where the stride leaves rows or columns over ((H + 2*pad - HH) not a\n"
            "multiple of the stride): those are never read, their dx is 0 and dw stops at HH.",
            "leftover-rows-and-columns",
            _each("dx", m.dx_without_leftover)
            + _each("dw", m.dw_leftover_uncropped, m.dw_leftover_last)),
    Mistake("output-size",
            "the forward's output size is off (ceil or float division, the + 1 or the padding\n"
            "forgotten); H' = (H + 2*pad - HH) // stride + 1, rounded down.",
            "output-size",
            _each("forward", m.y_ceil_size, m.y_size_without_plus_one, m.y_size_without_padding,
                  m.y_size_with_one_sided_pad)),
    Mistake("shape-crash",
            "raises on some geometries and not on others, typically an array or a loop sized\n"
            "for stride 1 or 'same' padding; every size follows from the output size.",
            "output-size", _each("dx", m.blog_recipe_dx), by_values=False),
)

# Findings that are not a wrong formula (no implementation to compare): stable ids too.
NOTES = {
    "mutates-input": ("modifies an array it was given (dout, x, w, b or the cache);\n"
                      "a layer must treat its inputs as read-only: copy before changing.",
                      "checking-gradients"),
    "raises-always": ("raises on every geometry of the battery: the error itself, not a\n"
                      "geometry, is the problem (the message shows the first one).", ""),
    "timeout": ("did not return within the time limit per call (--timeout); an endless loop,\n"
                "or code far slower than a loop over the output's entries needs.", ""),
    "backward-vs-forward": ("the backward does not match central differences of your own\n"
                            "forward: the backward, not only the forward, is wrong.",
                            "checking-gradients"),
    "forward-first": ("the forward is wrong and the backward is the right gradient of it:\n"
                      "fix the forward; the backward follows.", "checking-gradients"),
}


def by_id(mistake_id: str) -> Mistake:
    for mistake in CATALOG:
        if mistake.id == mistake_id:
            return mistake
    raise KeyError(f"no known mistake {mistake_id!r}; ids: {[m.id for m in CATALOG]}")
