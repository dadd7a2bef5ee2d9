"""Reader for the IDX format of MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file is a header followed by a dense big-endian array:

    bytes 0-1   zero
    byte  2     element type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d (>= 1)
    4*d bytes   the dimensions, unsigned 32-bit big-endian
    payload     prod(dims) elements in C order, big-endian

`read_idx` checks every part of that layout and requires the payload to match the header exactly, so a
truncated download or a file with trailing garbage is reported instead of silently misread.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib

import numpy as np

# Element-type code -> big-endian numpy dtype (the IDX specification's table).
IDX_DTYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file, raw or gzip-compressed (detected from the content, not the name).

    Returns a writable native-endian array of shape `dims` (e.g. (N, 28, 28) uint8 images, (N,) uint8
    labels). Raises ValueError naming the file for a bad magic number, an unknown element type, a missing
    or short header, or a payload shorter or longer than the header promises.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        buf = f.read()
    if buf[:2] == _GZIP_MAGIC:
        try:
            buf = gzip.decompress(buf)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(
                f"{path}: the gzip stream is corrupt or truncated ({err}); delete the file and fetch it again"
            ) from None
    return parse_idx(buf, source=path)


def parse_idx(buf: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (already decompressed); `source` names the origin in error messages."""
    if len(buf) < 4:
        raise ValueError(f"{source}: not an IDX file: {len(buf)} bytes, shorter than the 4-byte magic number")
    if buf[0] != 0 or buf[1] != 0:
        raise ValueError(
            f"{source}: not an IDX file: the magic number must start with two zero bytes, found "
            f"0x{buf[0]:02x} 0x{buf[1]:02x} (is it a different format, or still compressed?)"
        )
    code, ndim = buf[2], buf[3]
    if code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_DTYPES)
        raise ValueError(f"{source}: unknown IDX element type 0x{code:02X}; the format defines {known}")
    if ndim == 0:
        raise ValueError(f"{source}: IDX header declares 0 dimensions; at least 1 is required")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise ValueError(
            f"{source}: truncated IDX header: {ndim} dimensions need {header} header bytes, the file has {len(buf)}"
        )
    dims = struct.unpack(f">{ndim}I", buf[4:header])
    dtype = IDX_DTYPES[code]
    count = math.prod(dims)
    expected = count * dtype.itemsize
    found = len(buf) - header
    if found != expected:
        what = "truncated" if found < expected else "has trailing bytes"
        raise ValueError(
            f"{source}: IDX payload size mismatch ({what}): header dims {dims} of {dtype.name} need "
            f"{expected} bytes, the file has {found}; the file is damaged, fetch it again"
        )
    flat = np.frombuffer(buf, dtype=dtype, count=count, offset=header)
    return flat.reshape(dims).astype(dtype.newbyteorder("="))
