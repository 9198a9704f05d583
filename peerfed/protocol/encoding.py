"""The strict msgpack profile of spec §2: one valid byte string per value.

Allowed: nil, booleans, integers in [-2**63, 2**64 - 1], UTF-8 strings, binary, arrays.
Forbidden: maps, floats, extension types (timestamps included). Every length and integer
uses its shortest form, and a byte string holds exactly one object nested at most
``MAX_DEPTH`` arrays deep. ``unpack`` rejects anything else; msgpack's own exceptions are
translated here and nowhere else.
"""

from __future__ import annotations

from typing import TypeAlias

import msgpack

from .errors import EncodingError, InvalidValue

__all__ = ["MAX_DEPTH", "Value", "pack", "unpack"]

MAX_DEPTH = 8
_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1

Value: TypeAlias = bool | int | str | bytes | list["Value"] | None


class _Forbidden(Exception):
    pass


def _reject_map(pairs: object) -> object:
    raise _Forbidden("map")


def _reject_ext(code: int, data: bytes) -> object:
    raise _Forbidden("ext")


def _check(value: object, depth: int, local: bool) -> None:
    """Walk a decoded (or to-be-encoded) value and enforce the profile's types and depth."""
    if value is None or isinstance(value, (bool, str, bytes)):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise _fail(local, "integer out of range", "encoding.forbidden_type")
        return
    if isinstance(value, (list, tuple)):
        if depth >= MAX_DEPTH:
            raise _fail(local, f"arrays nested deeper than {MAX_DEPTH}", "encoding.too_deep")
        for item in value:
            _check(item, depth + 1, local)
        return
    raise _fail(local, f"type {type(value).__name__} is not allowed", "encoding.forbidden_type")


def _fail(local: bool, message: str, code: str) -> Exception:
    if local:
        return InvalidValue(message)
    return EncodingError(message, code)


def pack(value: Value | tuple[object, ...]) -> bytes:
    """Encode ``value`` canonically (spec §2). Tuples encode as arrays.

    Raises InvalidValue if the value holds a type or depth the profile forbids.
    """
    _check(value, 0, local=True)
    return msgpack.packb(value, use_bin_type=True)  # type: ignore[no-any-return]


def unpack(data: bytes) -> Value:
    """Decode exactly one canonical value from ``data``.

    Raises EncodingError (codes encoding.malformed, .trailing_bytes, .forbidden_type,
    .too_deep, .non_canonical) and nothing else. When input has several faults, the code is
    that of the first one met reading left to right (spec §2.3).
    """
    if not isinstance(data, bytes):
        raise EncodingError("input is not bytes")
    # Fast path: msgpack's C decoder, accepted only when the result re-encodes to the
    # identical bytes. Any doubt goes to the strict reader, which defines the error code.
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            object_pairs_hook=_reject_map,
            ext_hook=_reject_ext,
        )
        _check(value, 0, local=False)
        if msgpack.packb(value, use_bin_type=True) == data:
            return value  # type: ignore[no-any-return]
    except (_Forbidden, EncodingError, ValueError, msgpack.UnpackException):
        pass
    reader = _Reader(data)
    value = reader.read(0)
    if reader.pos != len(data):
        raise EncodingError("bytes after the value", "encoding.trailing_bytes")
    raise AssertionError("the strict reader accepted what the fast path refused")  # pragma: no cover


class _Reader:
    """The strict left-to-right reader of spec §2.3; used to name the first fault."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes:
        if self.pos + count > len(self.data):
            raise EncodingError("input ends inside a value", "encoding.malformed")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def read(self, depth: int) -> Value:
        tag = self.take(1)[0]
        if tag <= 0x7F:
            return tag
        if tag >= 0xE0:
            return tag - 0x100
        if 0xA0 <= tag <= 0xBF:
            return self.text(tag & 0x1F)
        if 0x90 <= tag <= 0x9F:
            return self.array(tag & 0x0F, depth)
        if tag == 0xC0:
            return None
        if tag in (0xC2, 0xC3):
            return tag == 0xC3
        if tag in _UINTS:
            size = _UINTS[tag]
            value = self.uint(size)
            if value < _UINT_FLOOR[size]:
                raise EncodingError("integer not in its shortest form", "encoding.non_canonical")
            return value
        if tag in _INTS:
            size = _INTS[tag]
            value = int.from_bytes(self.take(size), "big", signed=True)
            if value >= 0 or value >= _INT_CEILING[size]:
                raise EncodingError("integer not in its shortest form", "encoding.non_canonical")
            return value
        if tag in _STRS:
            return self.text(self.length(*_STRS[tag]))
        if tag in _BINS:
            size, floor = _BINS[tag]
            return self.take(self.length(size, floor))
        if tag in (0xDC, 0xDD):
            return self.array(self.length(*_ARRAYS[tag]), depth)
        if tag == 0xC1:
            raise EncodingError("byte 0xc1 is never used", "encoding.malformed")
        raise EncodingError(
            f"type byte 0x{tag:02x} (map, float or extension) is not allowed", "encoding.forbidden_type"
        )

    def length(self, size: int, floor: int) -> int:
        value = self.uint(size)
        if value < floor:
            raise EncodingError("length not in its shortest form", "encoding.non_canonical")
        return value

    def text(self, length: int) -> str:
        raw = self.take(length)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EncodingError("a str is not valid UTF-8", "encoding.malformed") from exc

    def array(self, length: int, depth: int) -> list[Value]:
        if depth >= MAX_DEPTH:
            raise EncodingError(f"arrays nested deeper than {MAX_DEPTH}", "encoding.too_deep")
        return [self.read(depth + 1) for _ in range(length)]


# tag -> size for uint8..uint64 and int8..int64; the smallest value each may carry.
_UINTS = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}
_UINT_FLOOR = {1: 0x80, 2: 0x100, 4: 0x10000, 8: 0x100000000}
_INTS = {0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}
_INT_CEILING = {1: -32, 2: -128, 4: -32768, 8: -(2**31)}
# tag -> (length size, smallest length allowed with it)
_STRS = {0xD9: (1, 32), 0xDA: (2, 256), 0xDB: (4, 65536)}
_BINS = {0xC4: (1, 0), 0xC5: (2, 256), 0xC6: (4, 65536)}
_ARRAYS = {0xDC: (2, 16), 0xDD: (4, 65536)}
