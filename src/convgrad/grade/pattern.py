"""The pattern: the simplest property of the geometry that separates passing from failing.

Each feature is a yes/no property of a :class:`~.battery.Geometry` with words for both
answers. The search tries one feature (either answer), then two together, and states the
first that splits the cases exactly: "correct only when stride = 1; everything else
fails". When none does, it says which single property comes closest.
"""
from __future__ import annotations

from itertools import combinations

__all__ = ["FEATURES", "describe_split"]


def _same(g) -> bool:
    kh, kw = g.w_shape[2:]
    return g.stride == 1 and 2 * g.pad == kh - 1 and 2 * g.pad == kw - 1


# (test, words when true, words when false)
FEATURES = (
    (lambda g: g.stride == 1, "stride = 1", "stride > 1"),
    (_same, "stride = 1 with 'same' padding (pad = (HH-1)/2: the output has the input's size)",
     "the padding is not 'same' at stride 1"),
    (lambda g: 2 * g.pad == g.w_shape[2] - 1 and 2 * g.pad == g.w_shape[3] - 1,
     "pad = (HH-1)/2 (the 'same' amount for the kernel, at any stride)",
     "pad != (HH-1)/2"),
    (lambda g: g.pad == 0, "pad = 0", "pad > 0"),
    (lambda g: any(g.leftover),
     "the stride leaves rows or columns over ((H + 2*pad - HH) not a multiple of it)",
     "no rows or columns are left over"),
    (lambda g: 2 * g.pad > min(g.w_shape[2:]) - 1, "pad > (HH-1)/2 (wider than 'same')",
     "pad <= (HH-1)/2"),
    (lambda g: g.x_shape[2] == g.x_shape[3] and g.w_shape[2] == g.w_shape[3],
     "input and kernel are square", "the input or the kernel is not square"),
    (lambda g: g.w_shape[2:] == (1, 1), "the kernel is 1x1", "the kernel is larger than 1x1"),
    (lambda g: g.x_shape[1] == g.w_shape[0], "C = F", "C != F"),
    (lambda g: min(g.x_shape[1], g.w_shape[0]) == 1, "C = 1 or F = 1", "C > 1 and F > 1"),
    (lambda g: g.x_shape[0] == 1, "N = 1", "N > 1"),
    (lambda g: g.out_size == (1, 1), "the output is 1x1", "the output is larger than 1x1"),
)


def _literals(geometries):
    """(words, [answer per geometry]) for every feature and its negation."""
    out = []
    for test, yes, no in FEATURES:
        answers = [bool(test(g)) for g in geometries]
        out.append((yes, answers))
        out.append((no, [not a for a in answers]))
    return out


def describe_split(geometries, failing, good: str = "correct", bad: str = "fails") -> str:
    """Words for the simplest property separating the failing geometries from the rest.

    ``good``/``bad`` are the verbs for the two sides ('runs'/'raises' for crashes).
    """
    failing = [bool(f) for f in failing]
    n_fail = sum(failing)
    if n_fail == 0:
        return f"{good} on every geometry"
    if n_fail == len(failing):
        return f"{bad} on every geometry"
    passing = [not f for f in failing]
    literals = _literals(geometries)
    # the smaller side is the one worth naming: "correct only when ..." or "fails only when"
    order = ((passing, good + " only when {}; " + ("everything else fails" if bad == "fails"
                                                   else f"{bad} everywhere else")),
             (failing, bad + " exactly when {}; " + good + " otherwise"))
    if n_fail < len(failing) - n_fail:
        order = order[::-1]
    for size in (1, 2):
        for target, template in order:
            for combo in combinations(literals, size):
                together = [all(answers[i] for _, answers in combo) for i in range(len(target))]
                if together == target:
                    return template.format(" and ".join(words for words, _ in combo))
    words, answers = min(literals, key=lambda lit: sum(a != f for a, f in zip(lit[1], failing)))
    inside = sum(1 for a, f in zip(answers, failing) if a and f)
    outside = n_fail - inside
    return (f"no simple property separates them: it {bad} on {inside} of "
            f"{sum(answers)} geometries where {words}, and on {outside} of "
            f"{len(answers) - sum(answers)} others")
