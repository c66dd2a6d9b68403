"""Read character vectors from an installed R package's lazy-load data base, without R.

An R package with ``LazyData: true`` keeps its data sets in ``data/Rdata.rdx`` (a gzip-compressed
serialisation of an index) and ``data/Rdata.rdb`` (concatenated zlib-compressed serialisations,
one per object).  Both use R's XDR (big-endian) serialisation format, versions 2 and 3.  This module
implements just enough of that format to recover data sets made of vectors, lists and
attributes; environments, closures and byte code are outside its scope.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path
from typing import Any

__all__ = ["RObject", "read_lazyload_db", "unserialize"]

# SEXP type codes (R Internals, "Serialization formats").
SYMSXP, LISTSXP, CHARSXP = 1, 2, 9
LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP, RAWSXP = 10, 13, 14, 16, 19, 24
LANGSXP, EXPRSXP = 6, 20
# Pseudo-types used only inside a serialisation stream.
REFSXP, NILVALUE_SXP, EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP = 255, 254, 242, 241, 253
PAIRLIST_TYPES = (LISTSXP, LANGSXP)
VECTOR_TYPES = (VECSXP, EXPRSXP)

TYPE_MASK = 0xFF
IS_OBJECT_BIT, HAS_ATTR_BIT, HAS_TAG_BIT = 1 << 8, 1 << 9, 1 << 10
REF_INDEX_SHIFT = 8
NA_STRING_LENGTH = -1
LONG_LENGTH_MARKER = -1
XDR_FORMAT_MAGIC = b"X\n"
VERSION_WITH_ENCODING = 3
CHUNK_HEADER_BYTES = 4


class RObject:
    """A decoded R value: ``value`` (list, str, float, ...) plus its attributes (names, class)."""

    def __init__(self, value: Any, attributes: dict[str, Any] | None = None) -> None:
        self.value = value
        self.attributes = attributes or {}

    def names(self) -> list[str] | None:
        """The ``names`` attribute, or None when the object has none."""
        names = self.attributes.get("names")
        return names.value if isinstance(names, RObject) else None

    def as_dict(self) -> dict[str, Any]:
        """A named list as a dict from name to element."""
        names = self.names()
        if names is None:
            raise ValueError("R object has no names attribute")
        return dict(zip(names, self.value))


class _XdrReader:
    """Sequential reader of one XDR serialisation stream."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.refs: list[Any] = []

    def take(self, size: int) -> bytes:
        """Return the next ``size`` bytes."""
        if self.pos + size > len(self.data):
            raise ValueError("truncated R serialisation stream")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def int32(self) -> int:
        """Return the next big-endian signed 32-bit integer."""
        return struct.unpack(">i", self.take(4))[0]

    def length(self) -> int:
        """Return a vector length, including R's 64-bit 'long vector' encoding."""
        size = self.int32()
        if size != LONG_LENGTH_MARKER:
            return size
        upper, lower = self.int32(), self.int32()
        return (upper << 32) + lower

    def header(self) -> None:
        """Consume the stream header: format, version, R versions, native encoding."""
        if self.take(2) != XDR_FORMAT_MAGIC:
            raise ValueError("not an XDR R serialisation (only format 'X' is supported)")
        version = self.int32()
        self.int32()  # R version that wrote the stream
        self.int32()  # oldest R version able to read it
        if version >= VERSION_WITH_ENCODING:
            self.take(self.int32())

    def item(self) -> Any:
        """Decode one serialised item (recursively)."""
        flags = self.int32()
        sexp_type = flags & TYPE_MASK
        if sexp_type in (NILVALUE_SXP, EMPTYENV_SXP, BASEENV_SXP, GLOBALENV_SXP):
            return None
        if sexp_type == REFSXP:
            index = flags >> REF_INDEX_SHIFT or self.int32()
            return self.refs[index - 1]
        if sexp_type == SYMSXP:
            symbol = self.item()
            self.refs.append(symbol)
            return symbol
        if sexp_type == CHARSXP:
            size = self.int32()
            return None if size == NA_STRING_LENGTH else self.take(size).decode("utf-8")
        if sexp_type in PAIRLIST_TYPES:
            return self._pairlist(flags)
        value = self._vector(sexp_type)
        attributes = self._attributes() if flags & HAS_ATTR_BIT else {}
        return RObject(value, attributes)

    def _vector(self, sexp_type: int) -> Any:
        """Decode the body of an atomic vector or list of the given type."""
        size = self.length()
        if sexp_type == STRSXP or sexp_type in VECTOR_TYPES:
            return [self.item() for _ in range(size)]
        if sexp_type in (LGLSXP, INTSXP):
            return list(struct.unpack(f">{size}i", self.take(4 * size)))
        if sexp_type == REALSXP:
            return list(struct.unpack(f">{size}d", self.take(8 * size)))
        if sexp_type == RAWSXP:
            return self.take(size)
        raise ValueError(f"unsupported R SEXP type {sexp_type}")

    def _pairlist(self, flags: int) -> RObject:
        """Decode a pairlist iteratively (attribute lists are pairlists of tag/value cells)."""
        items: dict[str, Any] = {}
        while True:
            if flags & HAS_ATTR_BIT:
                self.item()
            tag = self.item() if flags & HAS_TAG_BIT else None
            items[str(tag) if tag is not None else str(len(items))] = self.item()
            flags = self.int32()
            if flags & TYPE_MASK not in PAIRLIST_TYPES:
                self.pos -= 4
                self.item()  # the terminating CDR (normally R_NilValue)
                return RObject(items)

    def _attributes(self) -> dict[str, Any]:
        """Decode an attribute pairlist into a dict."""
        attributes = self.item()
        return attributes.value if isinstance(attributes, RObject) else {}


def unserialize(data: bytes) -> Any:
    """Decode one uncompressed XDR serialisation (the bytes after any compression header)."""
    reader = _XdrReader(data)
    reader.header()
    return reader.item()


def _read_rdb_chunk(rdb: bytes, offset: int, size: int) -> bytes:
    """Return the decompressed serialisation stored at ``offset`` in an ``.rdb`` file."""
    chunk = rdb[offset:offset + size]
    expected = struct.unpack(">I", chunk[:CHUNK_HEADER_BYTES])[0]
    data = zlib.decompress(chunk[CHUNK_HEADER_BYTES:])
    if len(data) != expected:
        raise ValueError(f"rdb chunk at {offset}: {len(data)} bytes, header says {expected}")
    return data


def read_lazyload_db(data_dir: Path) -> dict[str, Any]:
    """Decode every variable of ``data_dir/Rdata.rdx`` + ``Rdata.rdb`` (zlib-compressed only)."""
    index = unserialize(gzip.decompress((data_dir / "Rdata.rdx").read_bytes())).as_dict()
    compressed = index.get("compressed")
    if isinstance(compressed, RObject) and compressed.value not in ([1], [True]):
        raise ValueError("only zlib-compressed lazy-load data bases are supported")
    rdb = (data_dir / "Rdata.rdb").read_bytes()
    variables: dict[str, Any] = {}
    for name, location in index["variables"].as_dict().items():
        offset, size = (int(v) for v in location.value)
        variables[name] = unserialize(_read_rdb_chunk(rdb, offset, size))
    return variables
