"""nn.save / nn.load: round trips, atomic writes, and every bad file refused with the model
left exactly as it was."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

from convgrad import nn


def make_model(seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1, dtype=dtype, rng=rng), nn.BatchNorm2d(3, dtype=dtype),
        nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 4, dtype=dtype, rng=rng))


def trained(seed=0):
    """A model whose buffers moved away from their initial values too."""
    model = make_model(seed)
    x = np.random.default_rng(seed).standard_normal((5, 1, 4, 4)).astype(np.float32)
    model(x)
    return model


def snapshot(model):
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def assert_state_equal(model, state):
    current = model.state_dict()
    assert list(current) == list(state)
    for k in state:
        assert current[k].dtype == state[k].dtype and np.array_equal(current[k], state[k]), k


def write_npz(path, arrays):
    with open(path, "wb") as stream:
        np.savez(stream, **arrays)


# ----------------------------------------------------------------------------------------
# Round trips


def test_round_trip_parameters_buffers_and_metadata(tmp_path):
    source = trained(0)
    path = tmp_path / "model.npz"
    nn.save(source, path, metadata={"epochs": 3, "note": "ok"})
    target = make_model(1)
    assert int(target[1].num_batches_tracked) == 0
    metadata = nn.load(target, path)
    assert metadata == {"epochs": 3, "note": "ok"}
    assert_state_equal(target, snapshot(source))
    assert nn.read_metadata(path) == metadata
    with np.load(path, allow_pickle=False) as archive:            # a plain npz, no pickle
        assert set(archive.files) == set(source.state_dict()) | {"__metadata__"}
    x = np.random.default_rng(2).standard_normal((2, 1, 4, 4)).astype(np.float32)
    assert np.array_equal(source.eval()(x), target.eval()(x))


def test_methods_and_no_metadata(tmp_path):
    source, target = trained(0), make_model(1)
    source.save(tmp_path / "m.npz")
    assert target.load(tmp_path / "m.npz") == {}
    assert_state_equal(target, snapshot(source))


def test_loading_casts_to_the_models_dtype(tmp_path):
    source = make_model(0, dtype=np.float64)
    nn.save(source, tmp_path / "m.npz")
    target = make_model(1, dtype=np.float32)
    nn.load(target, tmp_path / "m.npz")
    for (name, a), (_, b) in zip(target.state_dict().items(), source.state_dict().items()):
        assert a.dtype == (np.int64 if "num_batches" in name else np.float32)
        assert np.array_equal(a, b.astype(a.dtype)), name


def test_load_writes_in_place_so_optimizers_keep_working(tmp_path):
    source, target = trained(0), make_model(1)
    nn.save(source, tmp_path / "m.npz")
    arrays_before = [p.data for p in target.parameters()]
    nn.load(target, tmp_path / "m.npz")
    assert all(a is p.data for a, p in zip(arrays_before, target.parameters()))


# ----------------------------------------------------------------------------------------
# Atomic saving


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "model.npz"
    nn.save(trained(0), path)
    good = path.read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    mask = os.umask(0)
    os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (0o666 & ~mask)

    def crash(stream, **arrays):
        stream.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        nn.save(trained(1), path)
    assert path.read_bytes() == good                       # the old model is intact
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]   # and no debris


def test_save_refuses_bad_metadata(tmp_path):
    with pytest.raises(TypeError, match="JSON-serializable"):
        nn.save(make_model(), tmp_path / "m.npz", metadata={"a": object()})
    with pytest.raises(TypeError, match="metadata must be a dict"):
        nn.save(make_model(), tmp_path / "m.npz", metadata=[1])
    assert not os.listdir(tmp_path)


# ----------------------------------------------------------------------------------------
# Bad files: a ValueError naming the problem, and the model unchanged


def good_arrays():
    return {k: np.array(v) for k, v in trained(3).state_dict().items()}


def _truncated(path):
    nn.save(trained(3), path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def _corrupted_member(path):
    """The central directory intact, the bytes of one compressed member flipped."""
    nn.save(trained(3), path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("0.weight.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 140
    for i in range(start, start + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def _object_array(path):
    arrays = good_arrays()
    arrays["0.weight"] = np.array([{"evil": "payload"}], dtype=object)
    write_npz(path, arrays)                                  # np.savez pickles it


def _drop(key):
    def make(path):
        arrays = good_arrays()
        del arrays[key]
        write_npz(path, arrays)
    return make


def _replace(key, value):
    def make(path):
        arrays = good_arrays()
        arrays[key] = value
        write_npz(path, arrays)
    return make


BAD_FILES = [
    ("truncated", _truncated, "truncated or corrupted"),
    ("corrupted member", _corrupted_member, "truncated or corrupted"),
    ("garbage bytes", lambda p: p.write_bytes(np.random.default_rng(0).bytes(300)),
     "not a .npz file"),
    ("garbage after zip magic", lambda p: p.write_bytes(b"PK\x03\x04" + b"\x00" * 100),
     "truncated or corrupted"),
    ("empty file", lambda p: p.write_bytes(b""), "is empty"),
    ("text file", lambda p: p.write_text("weights: 1, 2, 3\n"), "not a .npz file"),
    ("npy file", lambda p: np.save(p.open("wb"), np.zeros(3)), "is a .npy file"),
    ("pickle", lambda p: p.write_bytes(pickle.dumps(good_arrays())), "looks like a pickle"),
    ("object array", _object_array, r"array '0.weight' holds Python objects"),
    ("missing key", _drop("1.running_var"), r"missing key '1.running_var' \(expected shape \(3,\)\)"),
    ("extra key", _replace("9.weight", np.zeros(2, np.float32)), "unexpected key '9.weight'"),
    ("wrong shape", _replace("5.weight", np.zeros((4, 13), np.float32)),
     r"key '5.weight': expected shape \(4, 12\), found \(4, 13\)"),
    ("integer weights", _replace("0.bias", np.zeros(3, np.int64)),
     "key '0.bias': expected a floating-point array .* found dtype int64"),
    ("string buffer", _replace("1.num_batches_tracked", np.array("3")),
     "key '1.num_batches_tracked': expected an integer array .* found dtype <U1"),
    ("bad metadata", _replace("__metadata__", np.array("{not json")), "not valid JSON"),
    ("metadata not an object", _replace("__metadata__", np.array("[1, 2]")),
     "must hold a JSON object"),
]


@pytest.mark.parametrize("name, make, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_file_is_refused_and_model_unchanged(tmp_path, name, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    model = make_model(7)
    before = snapshot(model)
    with pytest.raises(ValueError, match=message) as info:
        nn.load(model, path)
    assert isinstance(info.value, nn.ModelFileError)
    assert "bad.npz" in str(info.value)
    assert_state_equal(model, before)


def test_all_problems_listed_and_nothing_assigned(tmp_path):
    """One good key, several bad: nothing is copied, every problem is named."""
    arrays = good_arrays()
    arrays["5.bias"] = np.zeros(5, np.float32)
    del arrays["0.weight"]
    arrays["surprise"] = np.ones(1)
    write_npz(tmp_path / "m.npz", arrays)
    model = make_model(8)
    before = snapshot(model)
    with pytest.raises(ValueError) as info:
        nn.load(model, tmp_path / "m.npz")
    text = str(info.value)
    assert "3 problems" in text and "'0.weight'" in text and "'5.bias'" in text
    assert "'surprise'" in text
    assert_state_equal(model, before)


def test_missing_path_and_directory(tmp_path):
    model = make_model()
    before = snapshot(model)
    with pytest.raises(ValueError, match="does not exist") as info:
        nn.load(model, tmp_path / "nope.npz")
    assert isinstance(info.value, FileNotFoundError)       # both, for either kind of caller
    with pytest.raises(ValueError, match="is a directory"):
        nn.load(model, tmp_path)
    assert_state_equal(model, before)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    """Even if a pickled object array is present, pickle.loads is never reached."""
    _object_array(tmp_path / "m.npz")
    called = []
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: called.append(a))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: called.append(a))
    with pytest.raises(ValueError):
        nn.load(make_model(), tmp_path / "m.npz")
    assert not called


def test_read_metadata_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        nn.read_metadata(tmp_path / "none.npz")
    write_npz(tmp_path / "plain.npz", {"a": np.zeros(1)})
    assert nn.read_metadata(tmp_path / "plain.npz") == {}
    buffer = io.BytesIO()
    np.savez(buffer, __metadata__=np.array(json.dumps({"x": 1})))
    (tmp_path / "meta.npz").write_bytes(buffer.getvalue())
    assert nn.read_metadata(tmp_path / "meta.npz") == {"x": 1}


class _Payload:
    """Unpickling this object would create a file: proof of code execution."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("container", ["object array in npz", "raw pickle"])
def test_malicious_pickle_never_executes(tmp_path, container):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    if container == "raw pickle":
        path.write_bytes(pickle.dumps({"0.weight": _Payload(marker)}))
    else:
        arrays = good_arrays()
        arrays["0.weight"] = np.array([_Payload(marker)], dtype=object)
        write_npz(path, arrays)
    assert not marker.exists()               # writing the file did not run it either
    model = make_model(3)
    before = snapshot(model)
    with pytest.raises(nn.ModelFileError):
        nn.load(model, path)
    assert not marker.exists()
    assert_state_equal(model, before)
