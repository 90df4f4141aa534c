"""`convgrad grade` names the mistake in each deliberately wrong layer of tests/grade_cases.

Each file there is written independently of convgrad.grade.mistakes (loops, the way
people write the layer), imported by the grader from its path in a worker process. The
right answers come from PyTorch float64 (tests/helpers.py), not from convgrad.
"""
import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from convgrad.apps.cli import main
from convgrad.grade import BATTERY, CATALOG, GradeError, grade
from convgrad.grade.battery import make_data
from helpers import rel_err, torch_conv

CASES = Path(__file__).resolve().parent / "grade_cases"

# file in tests/grade_cases -> the one catalog id the grader must name for it
MISTAKES = {
    "no_zero_insertion": "no-zero-insertion",
    "wrong_dy_padding": "wrong-dy-padding",
    "no_rotation": "no-rotation",
    "channels_not_swapped": "channels-not-swapped",
    "dx_not_cropped": "dx-not-cropped",
    "dw_missing_stride": "dw-missing-stride",
    "db_wrong_axes": "db-wrong-axes",
    "leftover_rows": "leftover-rows",
    "output_size": "output-size",
    "shape_crash": "shape-crash",
}

_REPORTS = {}


def graded(name, **options):
    """The grade of tests/grade_cases/NAME.py (computed once per set of options)."""
    key = (name, tuple(sorted(options.items())))
    if key not in _REPORTS:
        _REPORTS[key] = grade(file=CASES / f"{name}.py", **options)
    return _REPORTS[key]


def load(name):
    """The module tests/grade_cases/NAME.py, imported here to re-run its functions."""
    sys.path.insert(0, str(CASES))
    try:
        spec = importlib.util.spec_from_file_location(f"case_{name}", CASES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(CASES))
    return module


def fails_against_torch(module, g) -> bool:
    """Whether the layer's forward or backward differs from PyTorch on geometry g
    (or raises, or returns another shape), on the grader's reproduction data."""
    x, w, b, dy = make_data(g, 0)
    y, dx, dw, db = torch_conv(x, w, b, dy, stride=g.stride, padding=g.pad)
    param = {"stride": g.stride, "pad": g.pad}
    try:
        out, cache = module.conv_forward_naive(x, w, b, param)
        grads = module.conv_backward_naive(dy, (x, w, b, param))
    except Exception:                                # noqa: BLE001
        return True
    for mine, right in zip((out, *grads), (y, dx, dw, db)):
        if np.shape(mine) != right.shape or rel_err(mine, right) > 1e-8:
            return True
    return False


def _same_at_stride_1(g) -> bool:
    kh, kw = g.w_shape[2:]
    return g.stride == 1 and 2 * g.pad == kh - 1 and 2 * g.pad == kw - 1


# ----------------------------------------------------------------------------------------


def test_every_catalog_id_has_a_wrong_layer_in_the_tests():
    assert set(MISTAKES.values()) == {m.id for m in CATALOG}


@pytest.mark.parametrize("name,mistake", sorted(MISTAKES.items()))
def test_each_known_mistake_is_named_and_nothing_unrelated(name, mistake):
    report = graded(name)
    assert report.mistakes == [mistake], str(report)
    assert 0 < report.passed < report.total
    named = next(d for d in report.diagnoses if d.id == mistake)
    assert "docs/math.md#" in named.link and len(named.explanation.splitlines()) == 2
    module = load(name)
    for i, case in enumerate(report.cases):       # the grader's verdicts, against PyTorch
        if i % 3 == 0:
            assert fails_against_torch(module, case.geometry) == (not case.passed), i


def test_a_correct_loop_layer_passes_every_geometry_with_no_diagnosis():
    report = graded("correct")
    assert report.all_passed and report.passed == report.total == len(BATTERY)
    assert report.diagnoses == [] and report.shrunk == []
    for case in report.cases:
        assert set(case.outputs) == {"forward", "dx", "dw", "db"}
        for name in ("dx", "dw", "db"):
            assert case.outputs[name].own_forward == "agrees"
            assert case.outputs[name].rel_error < 1e-12


def test_the_stride_1_recipe_is_right_only_for_stride_1_and_same_padding():
    report = graded("blog_recipe")
    passing = [case.geometry for case in report.cases if case.passed]
    assert passing and passing == [g for g in BATTERY if _same_at_stride_1(g)]
    assert {"shape-crash", "wrong-dy-padding"} <= set(report.mistakes)
    # the recipe also leaves out zero insertion and dw's stride: naming those is right too
    assert set(report.mistakes) <= {"shape-crash", "wrong-dy-padding", "no-zero-insertion",
                                    "dw-missing-stride"}
    dx_pattern = next(d.message for d in report.diagnoses if d.id == "pattern"
                      and d.message.startswith("dx"))
    assert "correct only when stride = 1 with 'same' padding" in dx_pattern


@pytest.mark.parametrize("name", ["dw_missing_stride", "leftover_rows", "output_size",
                                  "blog_recipe"])
def test_shrinking_gives_a_smaller_geometry_that_still_fails(name, capsys):
    report = graded(name)
    assert report.shrunk
    module = load(name)
    for shrunk in report.shrunk:
        output = "dx" if shrunk.output == "backward" else shrunk.output
        failing = [c.geometry for c in report.cases if c.outputs[output].status != "ok"]
        assert shrunk.geometry.elements <= min(g.elements for g in failing)
        assert fails_against_torch(module, shrunk.geometry)
        sys.path.insert(0, str(CASES))                  # the reproduction runs as printed
        try:
            exec(shrunk.code, {})                       # noqa: S102
            assert capsys.readouterr().out.strip() == "False"
        except Exception:                               # noqa: BLE001
            assert shrunk.failure != "wrong"            # an error class: the call raises
        finally:
            sys.path.remove(str(CASES))


def test_errors_point_at_the_line_of_the_users_file():
    report = graded("shape_crash")
    crash = next(d for d in report.diagnoses if d.id == "shape-crash")
    assert "AssertionError" in crash.message and "shape_crash.py:" in crash.message
    assert "leaves rows or columns over" in crash.message


def test_a_backward_that_modifies_dout_is_reported():
    report = graded("mutates_dout")
    assert "mutates-input" in report.ids() and report.passed == 0
    assert all(case.mutated == ["dout"] for case in report.cases)


def test_a_wrong_forward_with_a_consistent_backward_is_told_apart(tmp_path):
    (tmp_path / "no_bias.py").write_text(
        "import numpy as np\n"
        "import convgrad\n"
        "def conv_forward_naive(x, w, b, conv_param):\n"
        "    out = convgrad.conv2d(x, w, stride=conv_param['stride'], "
        "padding=conv_param['pad'])\n"
        "    return out, (x, w, b, conv_param)\n"
        "def conv_backward_naive(dout, cache):\n"
        "    x, w, b, p = cache\n"
        "    dx, dw, _ = convgrad.conv2d_backward(dout, x, w, stride=p['stride'], "
        "padding=p['pad'])\n"
        "    return dx, dw, np.zeros_like(b)\n")
    report = grade(file=tmp_path / "no_bias.py")
    assert report.passed == 0 and "forward-first" in report.ids()
    assert "backward-vs-forward" not in report.ids()
    assert all(c.outputs["db"].own_forward == "agrees" for c in report.cases)


def test_an_endless_loop_is_stopped_quickly():
    start = time.perf_counter()
    report = grade(file=CASES / "endless.py", timeout=0.5)
    assert time.perf_counter() - start < 20
    assert "timeout" in report.ids() and report.passed == 0
    assert all(c.outputs["dx"].error.type == "Timeout" for c in report.cases)
    assert all(c.outputs["forward"].ok for c in report.cases)


def test_a_slow_layer_is_refused_up_front_naming_the_bound(tmp_path, capsys):
    (tmp_path / "slow.py").write_text(
        "import time\n"
        "from convgrad.cs231n import conv_forward_naive as f, conv_backward_naive as g\n"
        "def conv_forward_naive(x, w, b, p):\n    time.sleep(0.1)\n    return f(x, w, b, p)\n"
        "def conv_backward_naive(d, c):\n    return g(d, c)\n")
    start = time.perf_counter()
    assert main(["grade", str(tmp_path / "slow.py"), "--budget", "5"]) == 2
    assert time.perf_counter() - start < 15
    err = capsys.readouterr().err
    assert "over the bound of 5 s" in err and "--budget" in err and "Traceback" not in err


def test_a_file_that_fails_to_import_is_a_clear_message_and_exit_2(capsys):
    assert main(["grade", str(CASES / "broken_import.py")]) == 2
    err = capsys.readouterr().err
    assert "could not import broken_import.py: ImportError" in err
    assert "broken_import.py:3" in err and "Traceback" not in err
    with pytest.raises(GradeError, match="could not import"):
        grade(file=CASES / "broken_import.py")


def test_missing_names_and_files_exit_2(tmp_path, capsys):
    (tmp_path / "empty.py").write_text("def helper():\n    pass\n")
    assert main(["grade", str(tmp_path / "empty.py")]) == 2
    assert "defines none of conv_forward_naive" in capsys.readouterr().err
    assert main(["grade", str(CASES / "correct.py"), "--forward", "nope"]) == 2
    assert "defines no 'nope'" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "missing.py")]) == 2
    assert "is not a file" in capsys.readouterr().err


def test_cli_exit_status_text_and_json(tmp_path, capsys):
    out = tmp_path / "grade.json"
    assert main(["grade", str(CASES / "correct.py"), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"passes {len(BATTERY)} of {len(BATTERY)} geometries" in text
    assert "\033[" not in text                       # no colour off a terminal
    data = json.loads(out.read_text())
    assert data["passed"] == data["total"] == len(BATTERY) and data["diagnoses"] == []
    case = data["cases"][0]
    assert set(case["geometry"]) == {"x_shape", "w_shape", "stride", "pad"}
    for name in ("forward", "dx", "dw", "db"):
        assert case[name]["status"] == "ok" and case[name]["rel_error"] < 1e-12

    assert main(["grade", str(CASES / "dw_missing_stride.py"), "--json", "-"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert 0 < data["passed"] < data["total"]
    assert {"id": "dw-missing-stride"}.items() <= next(
        d for d in data["diagnoses"] if d["id"] == "dw-missing-stride").items()
    assert all({"id", "message"} <= set(d) for d in data["diagnoses"])
    wrong = [c for c in data["cases"] if c["dw"]["status"] == "wrong"]
    assert wrong and all(c["geometry"]["stride"] > 1 for c in wrong)


def test_colour_on_request():
    report = graded("dw_missing_stride")
    assert "\033[31m" in report.format(color=True) and "\033[" not in str(report)


def test_a_backward_alone_gets_the_courses_cache(capsys):
    report = grade(file=CASES / "dw_missing_stride.py", backward="conv_backward_naive")
    assert set(report.cases[0].outputs) == {"dx", "dw", "db"}
    assert report.mistakes == ["dw-missing-stride"]
    assert main(["grade", str(CASES / "correct.py"), "--backward", "conv_backward_naive"]) == 0


def test_the_functional_api_and_functions_passed_directly(tmp_path):
    import convgrad
    from convgrad.cs231n import conv_backward_fast, conv_forward_naive
    (tmp_path / "functional_layer.py").write_text(
        "import convgrad\n"
        "def forward(x, w, b, stride, pad):\n"
        "    return convgrad.conv2d(x, w, b, stride=stride, padding=pad)\n"
        "def backward(dy, x, w, b, stride, pad):\n"
        "    dx, dw, db = convgrad.conv2d_backward(dy, x, w, b, stride=stride, padding=pad)\n"
        "    return dx, dw, 2 * db\n")
    report = grade(file=tmp_path / "functional_layer.py", api="functional")
    assert report.passed == 0 and all(c.failing() == ["db"] for c in report.cases)
    assert "backward-vs-forward" in report.ids()
    assert grade(conv_forward_naive, conv_backward_fast).all_passed
    assert grade(lambda x, w, b, s, p: convgrad.conv2d(x, w, b, stride=s, padding=p),
                 api="functional").all_passed


def test_functions_passed_directly_are_stopped_by_a_watchdog():
    def endless(dout, cache):
        while True:
            pass
    start = time.perf_counter()
    report = grade(backward=endless, timeout=0.3)
    assert time.perf_counter() - start < 10 and "timeout" in report.ids()


@pytest.mark.parametrize("kwargs,message", [
    (dict(api="keras"), "api='keras'"),
    (dict(timeout=0), "timeout=0"),
    (dict(budget=-1), "budget=-1"),
    (dict(), "needs a forward, a backward or both"),
    (dict(forward=3), "forward must be a function"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("(", r"\(")):
        grade(**kwargs)


def test_docs_list_every_id_and_every_link_has_its_section():
    import re
    from convgrad.grade.catalog import NOTES
    docs = Path(__file__).resolve().parent.parent / "docs"
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", (docs / "grade.md").read_text(), re.M))
    assert documented == {m.id for m in CATALOG} | set(NOTES) | {"pattern"}
    headings = re.findall(r"^## (.+)$", (docs / "math.md").read_text(), re.M)
    anchors = {re.sub(r"[^a-z0-9 _-]", "", h.lower()).replace(" ", "-") for h in headings}
    links = {m.anchor for m in CATALOG} | {a for _, a in NOTES.values() if a}
    assert links <= anchors, links - anchors


def test_the_readme_transcript_is_what_the_grader_prints():
    import re
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = re.search(r"\$ convgrad grade tests/grade_cases/no_zero_insertion.py\n(.*?)```",
                      readme, re.S).group(1)
    printed = str(graded("no_zero_insertion")).splitlines()
    shown = [line for line in block.splitlines()[1:] if line.strip() != "..."]
    assert shown and all(line in printed for line in shown)
