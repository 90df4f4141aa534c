"""The command line never shows a traceback and never runs unbounded, whatever it is given.

Hypothesis draws argument lists for every command from the parser itself (each option
it declares, so a command added later is covered too), with values a user might type by
mistake: zero, negative, huge, NaN, shapes of the wrong length, padding larger than the
input, missing files, folders, a text file, a decompression-bomb PNG. Every run must end
within ``LIMIT`` seconds with an exit status and no "Traceback" (nor the CLI's one-line
"internal error", which stands for one). The long work behind a valid command (training,
the full benchmark or gradient-check grid) is replaced by a stub that stops the run the
moment it would start: what is tested is everything a user can get wrong before that.
"""
import argparse
import contextlib
import io
import signal
import string
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from convgrad.apps import cli  # noqa: E402
from convgrad.apps.commands import NAMES  # noqa: E402

LIMIT = 20.0            # seconds one run may take
OWN = ("demo", "train", "predict")                     # the digits commands
OTHERS = tuple(name for name in NAMES if name not in OWN)
SRC = str(Path(__file__).resolve().parent.parent / "src")


class WorkStarted(BaseException):
    """Raised by a stub where the long work would begin: the arguments were all accepted."""


class TooLong(BaseException):
    """The run went past LIMIT seconds."""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Paths the fuzzed arguments point at: {placeholder: path}."""
    root = tmp_path_factory.mktemp("fuzz")
    (root / "text.txt").write_text("not an image, not a model\n")
    (root / "folder").mkdir()
    paths = {"@missing": root / "missing.npz", "@folder": root / "folder",
             "@text": root / "text.txt", "@new": root / "new" / "out",
             "@newfile": root / "folder" / "out.png", "@nofolder": root / "no" / "such" / "x.png",
             "@proc": Path("/proc/convgrad-fuzz"), "@layer": root / "layer.py"}
    (root / "layer.py").write_text("def conv_forward_naive(x, w, b, conv_param):\n"
                                   "    raise NotImplementedError\n")
    try:
        from convgrad import nn
        from convgrad.apps.digits_data import (ARCHITECTURE, FORMAT, FORMAT_VERSION,
                                               build_model)
        nn.save(build_model(rng=0), root / "model.npz", metadata=dict(
            format=FORMAT, version=FORMAT_VERSION, architecture=ARCHITECTURE,
            dtype="float32", split=dict(seed=0, test_fraction=0.25), pixel_max=16.0))
        nn.save(nn.Sequential(nn.Linear(2, 2, rng=0)), root / "other.npz")
        paths.update({"@model": root / "model.npz", "@othermodel": root / "other.npz"})
    except ImportError:
        pass
    try:
        from PIL import Image
        digit = np.zeros((40, 30), np.uint8)
        digit[5:35, 12:18] = 255                                      # a "1"
        Image.fromarray(digit).save(root / "digit.png")
        Image.new("L", (20, 20), 128).save(root / "blank.png")
        paths.update({"@image": root / "digit.png", "@blank": root / "blank.png",
                      "@bomb": _bomb_png(root / "bomb.png")})
    except ImportError:
        pass
    return {key: str(value) for key, value in paths.items()}


def _bomb_png(path, side=100_000):
    """A 1 KB PNG whose header declares side x side pixels."""
    import struct
    import zlib

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))
    return path


# ----------------------------------------------------------------------------------------
# The arguments


INTS = ["0", "1", "2", "3", "-1", "7", "12", "1000", "1001", "4294967296",
        "99999999999999999999", "1e3", "2.5", "", " ", "x"]
NUMBERS = ["nan", "inf", "-inf", "-0.1", "0", "1e-300", "1e300", "0.003", "1"]
SHAPES = ["2,3,7,7", "1,1,4,4", "1,1,2,2", "2,3,7,7,7,7", "4,3,3,3,3,3", "0,1,4,4",
          "1,1,0,4", "1,2,5", "4", "4,4", "2", "2,2", "3,3", "5,5", "1,1,9", "1,1,3",
          "1,1,100000,100000", "64,64,64,64", ",", "1,,2", "a,b", "-1,1,4,4", "1:2,0:1",
          "1,2,3,4,5,6,7,8,9"]
PADDINGS = ["same", "valid", "SAME", "0", "1", "2", "1,2", "1:2,0:1", "40", "-1", "1:", ":",
            "1:2:3", "99999999"]
FILES = ["@missing", "@folder", "@text", "@new", "@newfile", "@nofolder", "@proc", "@model",
         "@othermodel", "@image", "@blank", "@bomb", "@layer", "-", "", "."]
ANYTHING = st.sampled_from(INTS + NUMBERS + SHAPES + PADDINGS + FILES) | st.text(
    alphabet=string.printable, max_size=8)
FILE_WORDS = ("out", "json", "plot", "png", "model", "image", "show", "file", "report")


def _kind(option, choices):
    """The values of an option's kind; argument_lists draws from them 4 times in 5 (so
    that whole geometries come together and reach the work), else anything at all."""
    name = option.lstrip("-")
    if choices:
        kind = list(choices)
    elif name in ("x", "w", "input", "weight") or "shape" in name or "size" in name:
        kind = SHAPES
    elif "padding" in name:
        kind = PADDINGS
    elif name in ("lr", "tolerance") or "rate" in name:
        kind = NUMBERS
    elif any(word in name for word in FILE_WORDS):
        kind = FILES
    else:
        kind = INTS + ["1,2", "2,1", "2,2,2", "3"]
    return kind


def _actions(name):
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    return commands.choices[name]._actions


def _options(name):
    """(option string, takes a value, choices) for each optional argument of a command."""
    return [(action.option_strings[-1], action.nargs != 0, action.choices)
            for action in _actions(name) if action.option_strings and action.dest != "help"]


def _positionals(name) -> int:
    """How many positional arguments a command takes (grade's FILE.py)."""
    return sum(1 for action in _actions(name) if not action.option_strings)


@st.composite
def argument_lists(draw, commands):
    name = draw(st.sampled_from(commands))
    options = _options(name)
    chosen = draw(st.lists(st.sampled_from(options), max_size=6, unique_by=lambda o: o[0]))
    argv = [name]
    for _ in range(_positionals(name)):                    # mostly a real file, else anything
        of_its_kind = draw(st.integers(0, 4)) > 0
        argv.append("@layer" if of_its_kind else draw(st.sampled_from(FILES) | ANYTHING))
    for option, takes_value, choices in chosen:
        argv.append(option)
        if takes_value:
            of_its_kind = draw(st.integers(0, 4)) > 0
            argv.append(draw(st.sampled_from(_kind(option, choices)) if of_its_kind
                             else ANYTHING))
    if draw(st.integers(0, 9)) == 0:                       # an odd extra now and then
        argv.insert(draw(st.integers(1, len(argv))),
                    draw(st.sampled_from(["--help", "--nope", "stray", "-x", "--"])))
    return argv


# ----------------------------------------------------------------------------------------
# Running one command line


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    """Stop each command where its long work would start (see the module docstring), in
    a folder of its own (relative output paths land there)."""
    patch = pytest.MonkeyPatch()
    patch.chdir(tmp_path_factory.mktemp("cwd"))

    def started(*args, **kwargs):
        raise WorkStarted

    import convgrad.grade
    from convgrad.apps import bench, digits, gradient_check
    real_check = gradient_check.run_check
    patch.setattr(convgrad.grade, "grade", started)               # grading a layer
    patch.setattr(digits, "_fit", started)                       # training
    patch.setattr(bench, "run", started)                         # the benchmark
    patch.setattr(gradient_check, "run_check",                   # the whole grid
                  lambda cases, *a, **k: started() if len(cases) > 1
                  else real_check(cases, *a, **k))
    yield
    patch.undo()


def run_cli(argv, files, limit=LIMIT):
    """Run ``convgrad argv`` in this process under a ``limit``-second alarm.

    Returns (exit status, 'work started' or 'too long', stdout, stderr, seconds); a
    traceback, as a user would see it, ends stderr.
    """
    argv = [files.get(a, a) for a in argv]
    out, err = io.StringIO(), io.StringIO()

    def too_long(signum, frame):
        raise TooLong

    previous = signal.signal(signal.SIGALRM, too_long)
    signal.setitimer(signal.ITIMER_REAL, limit)
    start = time.perf_counter()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                status = cli.main(argv)
            except SystemExit as exit_:                          # argparse: usage, --help
                status = exit_.code
            except WorkStarted:
                status = "work started"
            except TooLong:
                status = "too long"
            except Exception:                                    # what a user would see
                import traceback
                traceback.print_exc(file=err)
                status = "traceback"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return status, out.getvalue(), err.getvalue(), time.perf_counter() - start


def check_run(argv, files, limit=LIMIT):
    status, out, err, seconds = run_cli(argv, files, limit)
    shown = " ".join(argv)
    assert status != "too long", f"convgrad {shown}: still running after {limit} s"
    assert "Traceback" not in out + err and status != "traceback", f"convgrad {shown}:\n{err}"
    assert "internal error" not in err, f"convgrad {shown}: {err}"
    assert "Unable to allocate" not in err, f"convgrad {shown}: NumPy's message: {err}"
    assert status in (0, 1, 2, 3, "work started"), f"convgrad {shown}: exit {status}\n{err}"
    if status in (2, 3) and "usage:" not in err:       # our own messages: one line
        assert len(err.strip().splitlines()) == 1, f"convgrad {shown}:\n{err}"


FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                phases=[Phase.explicit, Phase.generate],          # no shrinking: slow runs
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@FUZZ
@given(argv=argument_lists(OWN))
def test_digits_commands_never_traceback_nor_run_unbounded(argv, files, stubs):
    check_run(argv, files)


@FUZZ
@given(argv=argument_lists(OTHERS))
def test_other_commands_never_traceback_nor_run_unbounded(argv, files, stubs):
    check_run(argv, files)


def _finding(argv, what, limit=LIMIT):
    return pytest.param(argv, limit, id=" ".join(argv))


@pytest.mark.parametrize("argv, limit", [          # what each one did before issue 12's fix
    _finding(["check", "--x", "2,3,7,7,7,7", "--w", "4,3,3,3,3,3"],
             "AttributeError (no conv4d)"),
    _finding(["check", "--x", "5,5", "--w", "5,5"], "AttributeError (no conv0d)"),
    _finding(["check", "--x", "1", "--w", "4,3,3,3,3,3", "--transposed"],
             "AttributeError (no conv_transpose-1d)"),
    _finding(["check", "--x", "2,3,7,7", "--w", "0", "--transposed"], "IndexError"),
    _finding(["check", "--x", "4", "--w", "1,1,3", "--transposed", "--groups",
              "4294967296"], "NumPy's 'Unable to allocate 32.0 GiB'"),
    _finding(["check", "--x", "1,1,4,4", "--w", "1,1,100000,100000", "--padding",
              "1"], "NumPy's 'Unable to allocate 74.5 GiB'"),
])
def test_known_findings_in_other_commands(argv, limit, files, stubs):
    """Found by the fuzzing above (and issue 12), fixed; kept as plain tests."""
    check_run(argv, files, limit)


@pytest.mark.parametrize("argv", [
    [], ["--version"], ["--help"], ["nope"], ["--nope"], ["demo", "--help"],
    ["predict", "--model", "@model", "--image", "@bomb"],
    ["predict", "--model", "@model", "--image", "@image", "--count", "2"],
    ["predict", "--model", "@text"], ["predict", "--model", "@othermodel"],
    ["predict", "--model", "@model", "--image", "@blank"],
    ["predict", "--model", "@model", "--image", "@text"],
    ["predict", "--model", "@model", "--count", "1000000"],
    ["train", "--out", "@text"], ["train", "--out", "@proc"], ["demo", "--out", "@text"],
    ["train", "--epochs", "1001"], ["train", "--seed", "4294967296"],
    ["train", "--lr", "inf"], ["demo", "--epochs", "99999999999999999999"],
    ["grade", "@layer"], ["grade", "@missing"], ["grade", "@folder"], ["grade"],
    ["grade", "@layer", "--json", "@proc"], ["grade", "@layer", "--timeout", "0"],
])
def test_chosen_command_lines(argv, files, stubs):
    check_run(argv, files)


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    from convgrad import __version__
    assert exit_.value.code == 0 and capsys.readouterr().out == f"convgrad {__version__}\n"


def test_an_internal_error_is_one_line_unless_debugging(monkeypatch, capsys):
    from convgrad.apps import digits_predict

    def broken(*args, **kwargs):
        raise KeyError("a bug")
    monkeypatch.setattr(digits_predict, "predict", broken)
    assert cli.main(["predict", "--model", __file__]) == cli.EXIT_INTERNAL
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "internal error (KeyError: 'a bug')" in err
    assert "CONVGRAD_DEBUG=1" in err
    monkeypatch.setenv("CONVGRAD_DEBUG", "1")
    with pytest.raises(KeyError):
        cli.main(["predict", "--model", __file__])


def test_an_os_error_is_said_without_its_errno(monkeypatch, capsys):
    from convgrad.apps import digits_predict

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", "/some/file")
    monkeypatch.setattr(digits_predict, "predict", denied)
    assert cli.main(["predict", "--model", __file__]) == 2
    assert capsys.readouterr().err == "convgrad predict: Permission denied: '/some/file'\n"


def test_a_warning_is_one_line(monkeypatch, capsys):
    import warnings
    from convgrad.apps import digits_predict
    monkeypatch.setattr(digits_predict, "predict",
                        lambda *a, **k: warnings.warn("careful\nnow", RuntimeWarning))
    assert cli.main(["predict", "--model", __file__]) == 0
    assert capsys.readouterr().err == "convgrad predict: warning: careful now\n"


def test_a_closed_pipe_ends_quietly():
    """`convgrad demo --help | head -1`: no "Broken pipe", exit 0."""
    process = subprocess.Popen([sys.executable, "-m", "convgrad.apps.cli", "demo", "--help"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={"PYTHONPATH": SRC, "PATH": "/usr/bin:/bin"}, bufsize=0)
    process.stdout.close()                     # the reader leaves before the first byte
    err = process.stderr.read()
    assert process.wait(timeout=60) == 0 and err == b""


def test_every_option_of_every_command_is_described_with_its_default():
    parser = cli.build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    for name, sub in commands.choices.items():
        text = sub.format_help()
        assert sub.description and len(sub.description) > 40, name
        for action in sub._actions:
            if (not action.option_strings or action.dest == "help"
                    or action.help == argparse.SUPPRESS):
                continue
            line = next(i for i, line in enumerate(text.splitlines())
                        if line.strip().startswith(action.option_strings[0]))
            entry = " ".join(text.splitlines()[line:line + 4])
            if action.default not in (None, False):
                assert "default" in entry, (name, action.option_strings)


def _undescribed(name) -> list:
    """The options of command ``name`` whose help says nothing but (at most) a default."""
    import re
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command").choices[name]
    missing = []
    for action in sub._actions:
        if not action.option_strings or action.dest == "help" or action.help == argparse.SUPPRESS:
            continue
        words = re.sub(r"\(?default:? [^)]*\)?", "", action.help or "").strip(" .;,")
        if len(words) < 3:
            missing.append(action.option_strings[0])
    return missing


@pytest.mark.parametrize("name", NAMES)
def test_every_option_says_what_it_is(name):
    assert _undescribed(name) == []
