"""Builders of hostile .npz model files, written byte by byte (no convgrad code involved).

Each ``make_*`` function writes one file at ``path`` that a careless reader would choke
on: inflate 2 GiB from 2 MB, allocate a (10**7, 10**7) array, recurse into nested JSON,
parse a million directory entries... The zip structures are packed here with ``struct``
so that the files can lie (wrong sizes, duplicate names, false counts), which
``zipfile`` refuses to write.
"""
import io
import json
import struct
import zlib

import numpy as np

_LOCAL = struct.Struct("<4s5H3L2H")           # local file header, 30 bytes
_CENTRAL = struct.Struct("<4s6H3L5H2L")       # central directory entry, 46 bytes
_END = struct.Struct("<4s4H2LH")              # end of central directory record, 22 bytes
_END64 = struct.Struct("<4sQ2H2L4Q")          # zip64 end of central directory record, 56
_END64_LOCATOR = struct.Struct("<4sLQL")      # zip64 end of central directory locator, 20
STORED, DEFLATED = 0, 8


def npy_header(shape, dtype="<f8") -> bytes:
    """A version 1.0 .npy header (magic, length, dict), padded to 64 bytes as NumPy does."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {tuple(shape)!r}, }}"
    length = -(-(len(text) + 11) // 64) * 64 - 10
    text = text.ljust(length - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", length) + text.encode("latin1")


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


class Entry:
    """One zip member: the bytes as stored, and what the directory will claim about them."""

    def __init__(self, name, data, *, method=STORED, crc=None, size=None, compressed=None,
                 flags=0):
        self.name = name.encode() if isinstance(name, str) else name
        self.stored = data if method == STORED else _deflate(data)
        self.method, self.flags = method, flags
        self.crc = zlib.crc32(data) if crc is None else crc
        self.size = len(data) if size is None else size
        self.compressed = len(self.stored) if compressed is None else compressed

    @classmethod
    def raw(cls, name, stored, *, method, crc, size, flags=0):
        """An entry whose stored bytes and claims are given as they are."""
        entry = cls(name, b"", flags=flags)
        entry.stored, entry.method, entry.crc, entry.size = stored, method, crc, size
        entry.compressed = len(stored)
        return entry


def _deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def write_zip(path, entries, *, claimed_count=None) -> None:
    """Pack ``entries`` into a zip at ``path``; the end record may claim another count."""
    out, directory = bytearray(), bytearray()
    for e in entries:
        offset = len(out)
        out += _LOCAL.pack(b"PK\x03\x04", 20, e.flags, e.method, 0, 0x21, e.crc,
                           e.compressed, e.size, len(e.name), 0) + e.name + e.stored
        directory += _CENTRAL.pack(b"PK\x01\x02", 20, 20, e.flags, e.method, 0, 0x21, e.crc,
                                   e.compressed, e.size, len(e.name), 0, 0, 0, 0, 0,
                                   offset) + e.name
    count = len(entries) if claimed_count is None else claimed_count
    end = b""
    if count >= 0xFFFF and claimed_count is None:          # zip64 records, as zipfile writes
        record = len(out) + len(directory)
        end = (_END64.pack(b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, len(directory),
                           len(out))
               + _END64_LOCATOR.pack(b"PK\x06\x07", 0, record, 1))
    end += _END.pack(b"PK\x05\x06", 0, 0, min(count, 0xFFFF), min(count, 0xFFFF),
                     len(directory), len(out), 0)
    with open(path, "wb") as stream:
        stream.write(bytes(out) + bytes(directory) + end)


def model_entries(state: dict, metadata=None) -> list:
    entries = [Entry(f"{k}.npy", npy_bytes(v)) for k, v in state.items()]
    if metadata is not None:
        entries.append(Entry("__metadata__.npy", npy_bytes(np.array(metadata))))
    return entries


# ----------------------------------------------------------------------------------------
# The hostile files


BOMB_BYTES = 2 * 2**30          # what the bomb inflates to: 2 GiB of zeros


def bomb_entry(name, total=BOMB_BYTES) -> Entry:
    """A deflated .npy of ``total`` bytes (header + float64 zeros) in about total / 1000.

    The zeros are compressed once per MiB with a full flush, which makes every MiB's
    deflate output identical: the stream is that block repeated, so building it costs
    one MiB of compression plus the CRC of 2 GiB of zeros (about half a second).
    """
    chunk = 1 << 20
    header = npy_header(((total - 128) // 8,))
    assert len(header) == 128 and (total - 128) % 8 == 0
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = compressor.compress(header + bytes(chunk - 128)) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(chunk)) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.flush()
    stored = head + block * (total // chunk - 1) + tail
    crc = zlib.crc32(header + bytes(chunk - 128))
    zeros = bytes(chunk)
    for _ in range(total // chunk - 1):
        crc = zlib.crc32(zeros, crc)
    return Entry.raw(name, stored, method=DEFLATED, crc=crc, size=total)


def make_bomb(path, state, key="junk") -> None:
    """The model's own arrays, plus 2 GiB of zeros in about 2 MB under ``key``."""
    write_zip(path, model_entries(state) + [bomb_entry(f"{key}.npy")])


def make_huge_header(path, state, key) -> None:
    """``key``'s header declares a (10**7, 10**7) float64 array (800 TB) in a small file."""
    entries = model_entries(state)
    data = npy_header((10**7, 10**7)) + bytes(64)
    entries = [Entry(e.name, data) if e.name == f"{key}.npy".encode() else e for e in entries]
    write_zip(path, entries)


def make_nested_metadata(path, state, depth=100_000) -> None:
    """Metadata JSON nested ``depth`` levels deep: json.loads recurses until it fails."""
    write_zip(path, model_entries(state) + [
        Entry("__metadata__.npy", npy_bytes(np.array("[" * depth + "]" * depth)))])


def make_big_integer_metadata(path, state) -> None:
    write_zip(path, model_entries(state) + [
        Entry("__metadata__.npy", npy_bytes(np.array('{"a": ' + "9" * 5000 + "}")))])


def make_huge_metadata(path, state) -> None:
    """Metadata declared as one 500-million-character string (2 GB) in a small file, the
    directory claiming those 2 GB too (so the sizes agree)."""
    header = npy_header((), dtype="<U500000000")
    write_zip(path, model_entries(state) + [
        Entry("__metadata__.npy", header + bytes(64), size=len(header) + 2_000_000_000)])


def make_truncated_member(path, state, key) -> None:
    """``key``'s data cut in half while the directory keeps the full size and CRC."""
    entries = model_entries(state)
    for e in entries:
        if e.name == f"{key}.npy".encode():
            full = e.stored
            e.stored = full[:len(full) // 2]
            e.compressed = len(e.stored)
    write_zip(path, entries)


def make_corrupt_deflate(path, state, key) -> None:
    """``key`` deflated, then a run of its compressed bytes overwritten with garbage."""
    entries = []
    for k, v in state.items():
        data = npy_bytes(v)
        if k == key:
            e = Entry(f"{k}.npy", data, method=DEFLATED)
            middle = len(e.stored) // 2
            e.stored = e.stored[:middle] + b"\xff" * 8 + e.stored[middle + 8:]
        else:
            e = Entry(f"{k}.npy", data)
        entries.append(e)
    write_zip(path, entries)


def make_wrong_sizes(path, state, key, *, size_delta=0, compressed_delta=0) -> None:
    """``key`` deflated, with its uncompressed or compressed size misstated."""
    entries = []
    for k, v in state.items():
        data = npy_bytes(v)
        method = DEFLATED if k == key else STORED
        e = Entry(f"{k}.npy", data, method=method)
        if k == key:
            e.size += size_delta
            e.compressed += compressed_delta
        entries.append(e)
    write_zip(path, entries)


def make_duplicate(path, state, key) -> None:
    """Two members named ``key``.npy: the first good, the second of another shape."""
    entries = model_entries(state)
    entries.append(Entry(f"{key}.npy", npy_bytes(np.zeros(7, np.float32))))
    write_zip(path, entries)


def make_many_members(path, count=100_000) -> None:
    """``count`` empty members (about 100 bytes each on disk): a directory that zipfile
    would parse, and np.load read member by member, for seconds."""
    write_zip(path, [Entry(f"{i}.npy", b"") for i in range(count)])


def make_understated_count(path, count=100_000) -> None:
    """As make_many_members, but the end record claims a single member."""
    write_zip(path, [Entry(f"{i}.npy", b"") for i in range(count)], claimed_count=1)


def make_overstated_count(path, state) -> None:
    """A good archive whose end record claims 65,535 members."""
    write_zip(path, model_entries(state), claimed_count=0xFFFF)


def make_nested_header(path, state, key) -> None:
    """``key``'s header is a literal nested thousands of levels deep (within 10 kB)."""
    entries = model_entries(state)
    text = "{'descr': " + "[" * 4000 + "]" * 4000 + ", 'fortran_order': False, 'shape': (3,)}"
    text = text.ljust(-(-(len(text) + 13) // 64) * 64 - 13) + "\n"
    data = b"\x93NUMPY\x02\x00" + struct.pack("<I", len(text)) + text.encode() + bytes(12)
    entries = [Entry(e.name, data) if e.name == f"{key}.npy".encode() else e for e in entries]
    write_zip(path, entries)


def make_giant_header(path, state, key) -> None:
    """``key``'s version 2.0 header claims to be 4 GB long."""
    entries = model_entries(state)
    data = b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFF0) + b"{" * 100
    entries = [Entry(e.name, data) if e.name == f"{key}.npy".encode() else e for e in entries]
    write_zip(path, entries)


def make_record_dtype(path, state, key) -> None:
    """``key`` a structured dtype whose field is a (10**6, 10**6) sub-array."""
    entries = model_entries(state)
    text = ("{'descr': [('a', '<f8', (1000000, 1000000))], 'fortran_order': False, "
            "'shape': (1,), }")
    text = text.ljust(-(-(len(text) + 11) // 64) * 64 - 11) + "\n"
    data = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode() + bytes(64)
    entries = [Entry(e.name, data) if e.name == f"{key}.npy".encode() else e for e in entries]
    write_zip(path, entries)


def make_encrypted(path, state, key) -> None:
    entries = model_entries(state)
    for e in entries:
        if e.name == f"{key}.npy".encode():
            e.flags = 1
    write_zip(path, entries)


def make_bzip2(path, state, key) -> None:
    """``key`` claims zip method 12 (bzip2), which numpy.savez never writes."""
    import bz2
    entries = model_entries(state)
    for i, e in enumerate(entries):
        if e.name == f"{key}.npy".encode():
            data = npy_bytes(state[key])
            entries[i] = Entry.raw(e.name, bz2.compress(data), method=12,
                                   crc=zlib.crc32(data), size=len(data))
    write_zip(path, entries)


def make_overflowing_values(path, state, key) -> None:
    """``key`` stored in float64 with a value beyond float32's range (1e300)."""
    value = np.asarray(state[key], np.float64).copy()
    value.flat[0] = 1e300
    write_zip(path, model_entries(dict(state, **{key: value})))


def make_good(path, state, metadata=None) -> None:
    write_zip(path, model_entries(state, None if metadata is None else json.dumps(metadata)))
