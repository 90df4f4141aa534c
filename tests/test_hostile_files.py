"""Hostile model files: refused with ModelFileError, in milliseconds, in bounded memory,
the model unchanged, nothing inflated before the names, dtypes and shapes are checked.

The files are built byte by byte in tests/hostile_files.py (zip bombs, lying sizes,
duplicate names, absurd counts, nested JSON); a subprocess measures the peak resident
memory (VmHWM) and CPU time of loading the worst of them.
"""
import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import hostile_files as H
from convgrad import nn


def make_model(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1, rng=rng), nn.BatchNorm2d(3),
                         nn.ReLU(), nn.Flatten(), nn.Linear(48, 4, rng=rng))


def state_of(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def assert_state_equal(model, state):
    for key, value in model.state_dict().items():
        assert value.dtype == state[key].dtype and np.array_equal(value, state[key]), key


SOURCE = state_of(make_model(1))

CASES = [
    ("bomb under an unknown key", lambda p: H.make_bomb(p, SOURCE), "unexpected key 'junk'"),
    ("bomb under a model key", lambda p: H.make_bomb(p, {k: v for k, v in SOURCE.items()
                                                          if k != "0.weight"}, "0.weight"),
     r"key '0.weight': expected shape \(3, 1, 3, 3\), found \(268435440,\)"),
    ("header declaring (10**7, 10**7)", lambda p: H.make_huge_header(p, SOURCE, "4.weight"),
     r"declares shape \(10000000, 10000000\)"),
    ("nested metadata JSON", lambda p: H.make_nested_metadata(p, SOURCE), "nested too deeply"),
    ("5000-digit integer in metadata", lambda p: H.make_big_integer_metadata(p, SOURCE),
     "not valid JSON"),
    ("2 GB metadata string", lambda p: H.make_huge_metadata(p, SOURCE), "allowed for metadata"),
    ("truncated member", lambda p: H.make_truncated_member(p, SOURCE, "0.weight"),
     "truncated or corrupted"),
    ("corrupt deflate stream", lambda p: H.make_corrupt_deflate(p, SOURCE, "4.weight"),
     "truncated or corrupted"),
    ("size overstated", lambda p: H.make_wrong_sizes(p, SOURCE, "4.weight", size_delta=64),
     "truncated or corrupted"),
    ("size understated", lambda p: H.make_wrong_sizes(p, SOURCE, "4.weight", size_delta=-8),
     "truncated or corrupted"),
    ("compressed size understated",
     lambda p: H.make_wrong_sizes(p, SOURCE, "4.weight", compressed_delta=-40),
     "truncated or corrupted"),
    ("duplicate names", lambda p: H.make_duplicate(p, SOURCE, "0.bias"),
     "two members named '0.bias.npy'"),
    ("100,000 members", lambda p: H.make_many_members(p), "claims 100,000 members"),
    ("100,000 members, the end record claiming 1",
     lambda p: H.make_understated_count(p), "truncated or corrupted"),
    ("end record claiming 65,535 members", lambda p: H.make_overstated_count(p, SOURCE),
     "truncated or corrupted"),
    ("header nested 4000 levels", lambda p: H.make_nested_header(p, SOURCE, "0.bias"),
     "unreadable .npy header"),
    ("header claiming 4 GB", lambda p: H.make_giant_header(p, SOURCE, "0.bias"),
     "unreadable .npy header"),
    ("record dtype with a huge sub-array", lambda p: H.make_record_dtype(p, SOURCE, "0.bias"),
     "truncated or corrupted|structured dtype"),
    ("encrypted member", lambda p: H.make_encrypted(p, SOURCE, "0.bias"), "is encrypted"),
    ("bzip2 member", lambda p: H.make_bzip2(p, SOURCE, "0.bias"), "compression method 12"),
    ("float64 value beyond float32", lambda p: H.make_overflowing_values(p, SOURCE, "4.bias"),
     "beyond the range of the model's dtype float32"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for name, make, _ in CASES:
        paths[name] = folder / (name.replace(" ", "_").replace(",", "") + ".npz")
        make(paths[name])
    return paths


@pytest.mark.parametrize("name, message", [(c[0], c[2]) for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_file_refused_and_model_unchanged(files, name, message):
    model = make_model(7)
    before = state_of(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no NumPy warning leaks either
        with pytest.raises(nn.ModelFileError, match=message) as info:
            nn.load(model, files[name])
        assert files[name].name in str(info.value)
        try:                                               # the metadata reader: an answer
            nn.read_metadata(files[name])                  # or the same kind of error
        except nn.ModelFileError:
            pass
    assert_state_equal(model, before)


def test_the_bomb_is_small_on_disk_and_valid(files):
    """The bomb is a real, valid archive: zipfile agrees with its sizes (2 GiB from 2 MB)."""
    import zipfile
    path = files["bomb under an unknown key"]
    assert path.stat().st_size < 3 * 2**20
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("junk.npy")
        assert info.file_size == H.BOMB_BYTES
        with archive.open(info) as stream:                 # its first MiB inflates right
            head = stream.read(1 << 20)
    assert head[:6] == b"\x93NUMPY" and not any(head[128:])


def test_good_files_from_the_builder_load(tmp_path):
    """The builder's honest archives load: the refusals above are about the lies."""
    H.make_good(tmp_path / "good.npz", SOURCE, metadata={"epochs": 2})
    model = make_model(7)
    assert nn.load(model, tmp_path / "good.npz") == {"epochs": 2}
    assert_state_equal(model, SOURCE)
    assert nn.read_metadata(tmp_path / "good.npz") == {"epochs": 2}


def test_an_overstated_compressed_size_is_harmless(tmp_path):
    """The deflate stream ends before the claimed compressed size: the data and its CRC
    are intact (zipfile stops at the stream's end), so the file loads as written."""
    H.make_wrong_sizes(tmp_path / "m.npz", SOURCE, "4.weight", compressed_delta=40)
    model = make_model(7)
    nn.load(model, tmp_path / "m.npz")
    assert_state_equal(model, SOURCE)


def test_compressed_models_load(tmp_path):
    """numpy.savez_compressed writes deflated members: read, CRC-checked, like stored."""
    source = make_model(2)
    with open(tmp_path / "c.npz", "wb") as stream:
        np.savez_compressed(stream, __metadata__=np.array(json.dumps({"a": 1})),
                            **state_of(source))
    model = make_model(3)
    assert nn.load(model, tmp_path / "c.npz") == {"a": 1}
    assert_state_equal(model, state_of(source))


_MEASURE = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from convgrad import nn
    import test_hostile_files as T

    def peak():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024

    model = T.make_model(7)
    results = {}
    for name, path in json.loads(sys.argv[1]).items():
        before, start = peak(), time.process_time()
        for read in (lambda: nn.load(model, path), lambda: nn.read_metadata(path)):
            try:
                read()
            except Exception:       # the kind of error is the other test's business
                pass
        results[name] = dict(cpu=time.process_time() - start, grew=peak() - before)
    print(json.dumps(results))
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux's VmHWM")
def test_refusals_take_milliseconds_and_no_memory(files):
    """Peak RSS (VmHWM) in a fresh process grows by under 32 MiB over all the worst files
    (the bomb alone would take 2 GiB), each refused in well under a second of CPU."""
    worst = ["bomb under an unknown key", "bomb under a model key",
             "header declaring (10**7, 10**7)", "nested metadata JSON", "2 GB metadata string",
             "100,000 members", "100,000 members, the end record claiming 1",
             "header claiming 4 GB"]
    tests = Path(__file__).resolve().parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(tests.parent / "src"), str(tests), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", _MEASURE,
                          json.dumps({n: str(files[n]) for n in worst})],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    for name, r in results.items():
        assert r["cpu"] < 0.5, (name, r)
    assert sum(r["grew"] for r in results.values()) < 32 * 2**20, results


@pytest.mark.parametrize("metadata, expected", [
    (H.npy_header((), "<U0"), "not valid JSON"),                 # 0-byte items: ''
    (H.npy_header((0,), "<U5"), "must be a JSON string"),        # no elements
])
def test_empty_metadata_members_are_clear_errors(tmp_path, metadata, expected):
    H.write_zip(tmp_path / "m.npz", H.model_entries(SOURCE) + [
        H.Entry("__metadata__.npy", metadata)])
    with pytest.raises(nn.ModelFileError, match=expected):
        nn.read_metadata(tmp_path / "m.npz")


def test_fortran_order_and_byte_swapped_arrays_load(tmp_path):
    """What np.save can write, nn.load reads: Fortran order, big-endian, float64."""
    state = {k: np.asfortranarray(v).astype(v.dtype.newbyteorder(">"))
             if v.dtype.kind == "f" else v for k, v in SOURCE.items()}
    H.write_zip(tmp_path / "m.npz", H.model_entries(state))
    model = make_model(7)
    nn.load(model, tmp_path / "m.npz")
    assert_state_equal(model, SOURCE)
