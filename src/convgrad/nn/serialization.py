"""Save and load a model's state (parameters and buffers) as a .npz archive, never pickled.

    nn.save(model, "model.npz", metadata={"epochs": 12})   # atomic: all or nothing
    metadata = nn.load(model, "model.npz")                 # validated before any change

The archive holds one array per entry of ``model.state_dict()``, named as there
("0.weight", "3.running_mean", ...), plus, when given, a JSON string under the key
``__metadata__`` (a 0-d unicode array, readable with :func:`read_metadata`).

Saving writes a temporary file in the destination folder and renames it over the
destination (os.replace), so a crash never leaves a half-written model. Loading reads
every array with ``allow_pickle=False``, checks all of them against the model (names,
shapes, kinds of dtype), and only then copies them in, cast to the model's dtypes: a bad
file raises :class:`ModelFileError` (a ValueError) and leaves the model unchanged.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
import zlib

import numpy as np

__all__ = ["save", "load", "read_metadata", "ModelFileError", "ModelFileNotFoundError",
           "METADATA_KEY"]

METADATA_KEY = "__metadata__"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"


class ModelFileError(ValueError):
    """A model file that cannot be read, or whose arrays do not fit the model."""


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """The model file does not exist (both a ValueError and a FileNotFoundError)."""


# ----------------------------------------------------------------------------------------
# Saving


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save(model, path, *, metadata: dict | None = None) -> None:
    """Write ``model.state_dict()`` (and ``metadata``, a JSON-able dict) to ``path``.

    The file is written exactly at ``path`` (no suffix is added; '.npz' is customary),
    atomically: a temporary file in the same folder, flushed to disk, then renamed.
    """
    arrays = {name: np.asarray(value) for name, value in model.state_dict().items()}
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        try:
            arrays[METADATA_KEY] = np.array(json.dumps(metadata, sort_keys=True))
        except (TypeError, ValueError) as error:
            raise TypeError(f"metadata must be JSON-serializable: {error}") from None
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as stream:
            np.savez(stream, **arrays)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())                 # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


# ----------------------------------------------------------------------------------------
# Reading


def _check_file(path: str) -> None:
    """Refuse, by its first bytes, anything that is not a zip archive (what .npz is)."""
    if not os.path.exists(path):
        raise ModelFileNotFoundError(f"model file {path!r} does not exist")
    if os.path.isdir(path):
        raise ModelFileError(f"model file {path!r} is a directory, not a .npz file")
    with open(path, "rb") as stream:
        head = stream.read(8)
    if not head:
        raise ModelFileError(f"model file {path!r} is empty")
    if head.startswith(_NPY_MAGIC):
        raise ModelFileError(f"{path!r} is a .npy file (one array), not a .npz model file "
                             f"(one array per parameter); save models with convgrad.nn.save")
    if head[:1] == b"\x80":
        raise ModelFileError(f"{path!r} looks like a pickle; convgrad never loads pickles "
                             f"(they can run code): save models with convgrad.nn.save")
    if not head.startswith(_ZIP_MAGIC):
        raise ModelFileError(f"{path!r} is not a .npz file (it does not start with the zip "
                             f"signature PK\\x03\\x04)")


def _member_dtype(archive: zipfile.ZipFile, key: str):
    """The dtype in an .npy member's header, or None if the header is unreadable."""
    try:
        with archive.open(f"{key}.npy") as stream:
            version = np.lib.format.read_magic(stream)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            return read_header(stream)[2]
    except Exception:  # noqa: BLE001 - a diagnosis for an error already being reported
        return None


def _read_arrays(path) -> dict[str, np.ndarray]:
    """Every array of the .npz at ``path``, fully read (so corruption shows up here)."""
    path = os.fspath(path)
    _check_file(path)
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as archive:
            for key in archive.files:
                try:
                    value = archive[key]
                except ValueError:
                    dtype = _member_dtype(archive.zip, key)
                    if dtype is not None and dtype.hasobject:
                        raise ModelFileError(
                            f"{path!r}: array {key!r} holds Python objects (dtype {dtype}), "
                            f"which would need unpickling; convgrad never loads pickles"
                        ) from None
                    raise
                if not isinstance(value, np.ndarray):
                    raise ModelFileError(f"{path!r}: entry {key!r} is not a NumPy array "
                                         f"(a foreign file inside the archive)")
                arrays[key] = value
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as error:
        raise ModelFileError(f"{path!r} is truncated or corrupted and cannot be read as a "
                             f".npz file ({type(error).__name__}: {error})") from None
    return arrays


def _parse_metadata(path, arrays) -> dict:
    if METADATA_KEY not in arrays:
        return {}
    value = arrays[METADATA_KEY]
    if value.shape != () or value.dtype.kind != "U":
        raise ModelFileError(f"{path!r}: {METADATA_KEY!r} must be a JSON string, got an "
                             f"array of shape {value.shape} and dtype {value.dtype}")
    try:
        metadata = json.loads(str(value))
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path!r}: {METADATA_KEY!r} is not valid JSON ({error})") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path!r}: {METADATA_KEY!r} must hold a JSON object")
    return metadata


def read_metadata(path) -> dict:
    """The metadata dict saved with a model ({} if none), without needing the model."""
    arrays = _read_arrays(path)
    return _parse_metadata(os.fspath(path), arrays)


def _problems(expected: dict, found: dict) -> list[str]:
    """Every mismatch between the model's state and the file's arrays, one line each."""
    problems = []
    for key, target in expected.items():
        if key not in found:
            problems.append(f"missing key {key!r} (expected shape {target.shape})")
            continue
        value = found[key]
        if value.shape != target.shape:
            problems.append(f"key {key!r}: expected shape {target.shape}, found {value.shape}")
        wanted = "f" if target.dtype.kind == "f" else "iu"
        if value.dtype.kind not in wanted:
            kind = "a floating-point" if wanted == "f" else "an integer"
            problems.append(f"key {key!r}: expected {kind} array (the model's dtype is "
                            f"{target.dtype}), found dtype {value.dtype}")
    for key in found:
        if key not in expected and key != METADATA_KEY:
            problems.append(f"unexpected key {key!r} (shape {found[key].shape}): the model "
                            f"has no such parameter or buffer")
    return problems


def load(model, path) -> dict:
    """Copy the arrays saved at ``path`` into ``model``; return the saved metadata ({}).

    Every array is checked first: the keys must be exactly the model's state_dict names,
    each of the same shape and the same kind of dtype (float for parameters; values are
    cast to the model's dtype). Any problem raises :class:`ModelFileError` (a ValueError)
    listing all of them, and the model is left exactly as it was.
    """
    found = _read_arrays(path)
    metadata = _parse_metadata(os.fspath(path), found)
    expected = model.state_dict()
    problems = _problems(expected, found)
    if problems:
        raise ModelFileError(f"{os.fspath(path)!r} does not match the model "
                             f"{type(model).__name__} ({len(problems)} problem"
                             f"{'s' if len(problems) > 1 else ''}):\n  " + "\n  ".join(problems))
    for key, target in expected.items():
        target[...] = found[key]                                # cast to the model's dtype
    return metadata
