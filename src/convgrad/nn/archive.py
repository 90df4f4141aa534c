"""Reading an .npz model file without trusting it: everything is checked before data is inflated.

An .npz is a zip archive holding one ``<key>.npy`` member per array. A hostile or broken
file can claim anything: a million members, two members of one name, a 2 MB member that
inflates to 2 GiB, a header declaring a (10**7, 10**7) array, sizes that disagree with
the bytes. :func:`open_archive` therefore reads, in this order, and refuses with
:class:`ModelFileError` at the first problem:

1. the first bytes: a zip archive (not a .npy file, not a pickle, not text);
2. the end-of-central-directory record (the last bytes): at most ``max_members`` members,
   a directory of a plausible size (counted again from the directory's own bytes);
3. the directory: every name ``<key>.npy`` and unique, stored or deflated, unencrypted;
4. the .npy header of each member asked for (a few hundred bytes inflated, at most
   ``MAX_HEADER_BYTES``): a plain dtype (no Python objects, no records), and
   ``header + prod(shape) * itemsize`` equal to the member's size in the directory.

Only then does :meth:`Archive.read` inflate a member, into a buffer of exactly the size
its header declared and its caller has accepted; the zip's CRC-32 is checked at its end.
So memory is bounded by what the caller accepts (the model's own size, for
:func:`convgrad.nn.load`), and a refusal costs no more than reading the headers.
"""
from __future__ import annotations

import math
import os
import struct
import zipfile
import zlib

import numpy as np

__all__ = ["Archive", "Member", "open_archive", "ModelFileError", "ModelFileNotFoundError",
           "MAX_MEMBERS", "MAX_HEADER_BYTES"]

MAX_MEMBERS = 10_000          # a model with more parameters and buffers than this is absurd
MAX_HEADER_BYTES = 10_000     # NumPy's own limit on an .npy header it will parse
_MAX_DIRECTORY_ENTRY = 46 + 1024 + 256   # fixed part + a long name + extra fields, bytes
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_MAGIC = b"\x93NUMPY"
_END = struct.Struct("<4s4H2LH")           # end of central directory record, 22 bytes
_END64_LOCATOR = struct.Struct("<4sLQL")   # zip64 end of central directory locator, 20
_END64 = struct.Struct("<4sQ2H2L4Q")       # zip64 end of central directory record, 56
_DIRECTORY_SIGNATURE = b"PK\x01\x02"
_CHUNK = 1 << 20


class ModelFileError(ValueError):
    """A model file that cannot be read, or whose arrays do not fit the model."""


class ModelFileNotFoundError(ModelFileError, FileNotFoundError):
    """The model file does not exist (both a ValueError and a FileNotFoundError)."""


class Member:
    """One array of the archive, as its .npy header describes it (nothing inflated yet)."""

    __slots__ = ("key", "shape", "dtype", "fortran_order", "offset", "nbytes", "info")

    def __init__(self, key, shape, dtype, fortran_order, offset, nbytes, info):
        self.key, self.shape, self.dtype = key, shape, dtype
        self.fortran_order, self.offset, self.nbytes, self.info = (fortran_order, offset,
                                                                    nbytes, info)


def _corrupt(path: str, what) -> ModelFileError:
    if isinstance(what, BaseException):
        what = f"{type(what).__name__}: {what}"
    return ModelFileError(f"{path!r} is truncated or corrupted and cannot be read as a .npz "
                          f"file ({what})")


def _check_start(path: str) -> int:
    """Refuse, by its first bytes, anything that is not a zip archive; return its size."""
    if not os.path.exists(path):
        raise ModelFileNotFoundError(f"model file {path!r} does not exist")
    if os.path.isdir(path):
        raise ModelFileError(f"model file {path!r} is a directory, not a .npz file")
    with open(path, "rb") as stream:
        head = stream.read(8)
        size = stream.seek(0, os.SEEK_END)
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
    return size


def _check_directory(path: str, size: int, max_members: int) -> int:
    """Read the end records and the directory's bytes; return the member count they claim.

    The directory is scanned for entry signatures, so a record understating the count
    cannot make zipfile parse a million entries.
    """
    with open(path, "rb") as stream:
        tail_size = min(size, _END.size + 65535)           # the record + the longest comment
        stream.seek(size - tail_size)
        tail = stream.read(tail_size)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + _END.size > len(tail):
            raise _corrupt(path, "no end of central directory record")
        (_, _, _, _, count, directory_size, directory_offset,
         _) = _END.unpack_from(tail, at)
        end = size - tail_size + at                        # where the record starts
        directory_end = end
        if count == 0xFFFF or 0xFFFFFFFF in (directory_size, directory_offset):
            locator = end - _END64_LOCATOR.size
            if locator < 0:
                raise _corrupt(path, "a zip64 archive without its zip64 locator")
            stream.seek(locator)
            signature, _, record, _ = _END64_LOCATOR.unpack(stream.read(_END64_LOCATOR.size))
            if signature != b"PK\x06\x07" or record > locator - _END64.size:
                raise _corrupt(path, "a bad zip64 end of central directory locator")
            stream.seek(record)
            fields = _END64.unpack(stream.read(_END64.size))
            if fields[0] != b"PK\x06\x06":
                raise _corrupt(path, "a bad zip64 end of central directory record")
            count, directory_size = fields[7], fields[8]
            directory_end = record
        if count > max_members:
            raise ModelFileError(f"{path!r} claims {count:,} members, more than the "
                                 f"{max_members:,} allowed (one per parameter or buffer, "
                                 f"plus metadata)")
        if directory_size > directory_end:
            raise _corrupt(path, f"a central directory of {directory_size:,} bytes in a "
                                 f"file of {size:,}")
        if directory_size > max(count, 1) * _MAX_DIRECTORY_ENTRY:
            raise _corrupt(path, f"a central directory of {directory_size:,} bytes for "
                                 f"{count:,} members")
        stream.seek(directory_end - directory_size)
        found = stream.read(directory_size).count(_DIRECTORY_SIGNATURE)
    if found != count:
        raise _corrupt(path, f"the end record counts {count:,} members, the directory "
                             f"holds {found:,}")
    return count


class Archive:
    """An opened, structurally checked archive: ``members(keys)`` reads headers,
    ``read(member)`` inflates one array. Use as a context manager."""

    def __init__(self, path: str, zip_file: zipfile.ZipFile, infos: dict):
        self.path, self._zip, self._infos = path, zip_file, infos

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._zip.close()

    def keys(self) -> list[str]:
        """The array names, in the archive's order."""
        return list(self._infos)

    def member(self, key: str) -> Member:
        """The header of ``key``'s .npy, checked against the member's size (a few hundred
        bytes inflated)."""
        info, path = self._infos[key], self.path
        try:
            with self._zip.open(info) as stream:
                magic = stream.read(len(_NPY_MAGIC) + 2)
                if magic[:len(_NPY_MAGIC)] != _NPY_MAGIC:
                    raise ModelFileError(f"{path!r}: entry {key!r} is not a NumPy array (a "
                                         f"foreign file inside the archive)")
                version = tuple(magic[len(_NPY_MAGIC):])             # (major, minor)
                if version not in ((1, 0), (2, 0), (3, 0)):
                    raise _corrupt(path, f"entry {key!r} has .npy format version {version}")
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, fortran_order, dtype = read_header(stream,
                                                          max_header_size=MAX_HEADER_BYTES)
                offset = stream.tell()
        except ModelFileError:
            raise
        except Exception as error:  # noqa: BLE001 - NumPy's parser on hostile bytes
            raise _corrupt(path, f"entry {key!r} has an unreadable .npy header: "
                                 f"{type(error).__name__}: {str(error)[:200]}") from None
        if dtype.hasobject:
            raise ModelFileError(f"{path!r}: array {key!r} holds Python objects (dtype "
                                 f"{dtype}), which would need unpickling; convgrad never "
                                 f"loads pickles")
        if dtype.fields is not None or dtype.subdtype is not None:
            raise ModelFileError(f"{path!r}: array {key!r} has a structured dtype {dtype}; "
                                 f"a model holds plain arrays of numbers")
        nbytes = math.prod(shape) * dtype.itemsize                # Python ints: no overflow
        if offset + nbytes != info.file_size:
            raise _corrupt(path, f"entry {key!r} declares shape {shape} and dtype {dtype}, "
                                 f"{nbytes:,} bytes of data, but the archive gives it "
                                 f"{info.file_size - offset:,}")
        return Member(key, shape, dtype, bool(fortran_order), offset, nbytes, info)

    def read(self, member: Member) -> np.ndarray:
        """Inflate ``member`` into an array of exactly its declared size; check the CRC."""
        buffer = np.empty(member.nbytes, np.uint8)
        view, done = memoryview(buffer), 0
        try:
            with self._zip.open(member.info) as stream:
                stream.read(member.offset)                           # the header, again
                while done < member.nbytes:
                    chunk = stream.read(min(_CHUNK, member.nbytes - done))
                    if not chunk:
                        raise EOFError(f"entry {member.key!r} ends after {done:,} of "
                                       f"{member.nbytes:,} bytes")
                    view[done:done + len(chunk)] = chunk
                    done += len(chunk)
                if stream.read(1):                                   # also checks the CRC
                    raise _corrupt(self.path, f"entry {member.key!r} is longer than "
                                              f"declared")
        except ModelFileError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
            raise _corrupt(self.path, error) from None
        if not member.nbytes:                          # no elements, or 0-byte items ('<U0')
            return np.zeros(member.shape, member.dtype)
        return buffer.view(member.dtype).reshape(member.shape,
                                                 order="F" if member.fortran_order else "C")


def open_archive(path, *, max_members: int = MAX_MEMBERS) -> Archive:
    """Check the file and its directory (steps 1 to 3 of the module docstring)."""
    path = os.fspath(path)
    size = _check_start(path)
    count = _check_directory(path, size, max_members)
    try:
        zip_file = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError) as error:
        raise _corrupt(path, error) from None
    try:
        infos = {}
        entries = zip_file.infolist()
        if len(entries) != count:
            raise _corrupt(path, f"the end record counts {count:,} members, the directory "
                                 f"holds {len(entries):,}")
        for info in entries:
            name = info.filename
            if not name.endswith(".npy") or name.endswith("/"):
                raise ModelFileError(f"{path!r}: entry {name!r} is not a NumPy array (a "
                                     f"foreign file inside the archive)")
            key = name[:-len(".npy")]
            if key in infos:
                raise ModelFileError(f"{path!r} holds two members named {name!r}; a model "
                                     f"file has one array per name")
            if info.flag_bits & 0x1:
                raise ModelFileError(f"{path!r}: entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise ModelFileError(f"{path!r}: entry {name!r} uses zip compression "
                                     f"method {info.compress_type}; convgrad reads stored "
                                     f"or deflated members (what numpy.savez and "
                                     f"savez_compressed write)")
            infos[key] = info
    except BaseException:
        zip_file.close()
        raise
    return Archive(path, zip_file, infos)
