"""Save and load a model's state (parameters and buffers) as a .npz archive, never pickled.

    nn.save(model, "model.npz", metadata={"epochs": 12})   # atomic: all or nothing
    metadata = nn.load(model, "model.npz")                 # validated before any change

The archive holds one array per entry of ``model.state_dict()``, named as there
("0.weight", "3.running_mean", ...), plus, when given, a JSON string under the key
``__metadata__`` (a 0-d unicode array, readable with :func:`read_metadata`).

Saving writes a temporary file in the destination folder and renames it over the
destination (os.replace), so a crash never leaves a half-written model. Loading trusts
nothing in the file (:mod:`convgrad.nn.archive`): the zip directory and every array's
.npy header (names, dtypes, shapes, sizes) are checked against the model before any data
is inflated, so a hostile file costs no more memory than the model itself and is refused
in milliseconds. Then the arrays are read (``allow_pickle`` never arises: object arrays
are refused from their header), cast to the model's dtypes (values beyond the dtype's
range are refused, not turned into inf), and only then copied in: a bad file raises
:class:`ModelFileError` (a ValueError) and leaves the model unchanged.
"""
from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from .archive import MAX_MEMBERS, ModelFileError, ModelFileNotFoundError, open_archive

__all__ = ["save", "load", "read_metadata", "ModelFileError", "ModelFileNotFoundError",
           "METADATA_KEY"]

METADATA_KEY = "__metadata__"
MAX_METADATA_BYTES = 1 << 20     # 256 Ki characters of JSON: metadata is a few lines
_MAX_PROBLEMS_SHOWN = 20


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


def _metadata(path: str, archive, members: dict) -> dict:
    """The JSON object under METADATA_KEY ({} if absent), its size checked before reading."""
    if METADATA_KEY not in members:
        return {}
    member = members[METADATA_KEY]
    if member.shape != () or member.dtype.kind != "U":
        raise ModelFileError(f"{path!r}: {METADATA_KEY!r} must be a JSON string, got an "
                             f"array of shape {member.shape} and dtype {member.dtype}")
    if member.nbytes > MAX_METADATA_BYTES:
        raise ModelFileError(f"{path!r}: {METADATA_KEY!r} holds {member.nbytes:,} bytes, "
                             f"more than the {MAX_METADATA_BYTES:,} allowed for metadata")
    text = str(archive.read(member)[()])
    try:
        metadata = json.loads(text)
    except RecursionError:
        raise ModelFileError(f"{path!r}: {METADATA_KEY!r} is JSON nested too deeply to "
                             f"read") from None
    except ValueError as error:          # JSONDecodeError, or an integer of 5,000 digits
        raise ModelFileError(f"{path!r}: {METADATA_KEY!r} is not valid JSON "
                             f"({str(error)[:200]})") from None
    if not isinstance(metadata, dict):
        raise ModelFileError(f"{path!r}: {METADATA_KEY!r} must hold a JSON object")
    return metadata


def read_metadata(path) -> dict:
    """The metadata dict saved with a model ({} if none), without needing the model.

    Only the metadata member is inflated (at most MAX_METADATA_BYTES); the archive's
    directory is checked as :func:`load` checks it.
    """
    path = os.fspath(path)
    with open_archive(path) as archive:
        members = ({METADATA_KEY: archive.member(METADATA_KEY)}
                   if METADATA_KEY in archive.keys() else {})
        return _metadata(path, archive, members)


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


def _cast(path: str, key: str, value: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``value`` in ``target``'s dtype; values beyond that dtype's range are refused (a
    float64 1e300 would become inf in float32, an int beyond int64 would wrap)."""
    with np.errstate(over="ignore", invalid="ignore"):
        cast = value.astype(target.dtype)
        if target.dtype.kind == "f":
            lost = np.isfinite(value) & ~np.isfinite(cast)
        else:
            lost = cast != value
    if lost.any():
        count = int(lost.sum())
        raise ModelFileError(f"{path!r}: key {key!r} holds {count:,} value"
                             f"{'s' if count > 1 else ''} beyond the range of the model's "
                             f"dtype {target.dtype} (e.g. {value[lost].flat[0].item()!r})")
    return cast


def load(model, path) -> dict:
    """Copy the arrays saved at ``path`` into ``model``; return the saved metadata ({}).

    Every array is checked first, from its header, before any data is read: the keys
    must be exactly the model's state_dict names, each of the same shape and the same kind
    of dtype (float for parameters; values are cast to the model's dtype). Any problem
    raises :class:`ModelFileError` (a ValueError) listing all of them, and the model is
    left exactly as it was.
    """
    path = os.fspath(path)
    expected = model.state_dict()
    with open_archive(path, max_members=max(MAX_MEMBERS, len(expected) + 1)) as archive:
        found = {key: archive.member(key) for key in archive.keys()}   # headers only
        metadata = _metadata(path, archive, found)
        problems = _problems(expected, found)
        if problems:
            shown = problems[:_MAX_PROBLEMS_SHOWN]
            if len(problems) > len(shown):
                shown.append(f"... and {len(problems) - len(shown):,} more")
            raise ModelFileError(f"{path!r} does not match the model {type(model).__name__} "
                                 f"({len(problems):,} problem{'s' if len(problems) > 1 else ''}"
                                 f"):\n  " + "\n  ".join(shown))
        values = {key: _cast(path, key, archive.read(found[key]), target)
                  for key, target in expected.items()}
    for key, target in expected.items():
        target[...] = values[key]
    return metadata
