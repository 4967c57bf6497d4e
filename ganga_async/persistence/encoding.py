"""JSON text of a job's description, encoded in slices so that a large one never holds the
event loop.

``json.dumps`` encodes a whole value in one C call that keeps the interpreter's lock: a job
description holding a million argument lists (an ``ArgSplitter``'s ``args``) takes one to two
hundred milliseconds, during which the engine's loop runs nothing. :func:`encode` gives the
same text (``json.dumps(value, separators=(",", ":"))``), each list over :data:`SLICE` items
encoded a slice at a time with a checkpoint between slices; :func:`encode_small` encodes a
value at once when it has no such list, and says so (None) otherwise.

:func:`decode` reads such a text back (what ``json.loads`` gives) with the same care: a long
text is walked down its objects, and the items of each list are decoded one C call each, with
a checkpoint every :data:`SLICE` items.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Generator, Iterator
from typing import Any

import anyio

__all__ = ["SLICE", "decode", "encode", "encode_small", "encode_while"]

SLICE = 4096
"""Items of a list encoded in one C call (a few milliseconds for short argument lists)."""

_dumps = json.JSONEncoder(separators=(",", ":")).encode
_BREAK = None
"""Yielded by :func:`_pieces` between two slices: a place to let the loop run."""


def _pieces(value: Any, path: set[int]) -> Iterator[str | None]:
    """The JSON text of ``value`` in pieces, :data:`_BREAK` between slices of a long list.
    Dicts and lists are walked only down to the first level that holds no long list; the
    items of a long list are encoded a slice at a time, each whole (an argument list). A dict
    holding a long list must have string keys (a description's have)."""
    if isinstance(value, dict):
        if not _has_long(value):
            yield _dumps(value)
            return
        if any(not isinstance(k, str) for k in value):
            raise TypeError("keys must be str in a job description")
        _enter(value, path)
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield (',' if i else '') + _dumps(key) + ":"
            yield from _pieces(item, path)
        yield "}"
        path.discard(id(value))
        return
    if isinstance(value, list) and _has_long(value):
        _enter(value, path)
        yield "["
        if len(value) > SLICE:
            for start in range(0, len(value), SLICE):
                yield ("," if start else "") + _dumps(value[start:start + SLICE])[1:-1]
                yield _BREAK
        else:  # a short list holding a long one
            for i, item in enumerate(value):
                if i:
                    yield ","
                yield from _pieces(item, path)
        yield "]"
        path.discard(id(value))
        return
    yield _dumps(value)


def _has_long(value: dict[Any, Any] | list[Any]) -> bool:
    """Whether ``value`` is, or holds at any depth, a list of more than :data:`SLICE` items
    (a long list's own items are not looked into: it is sliced anyway)."""
    if isinstance(value, list):
        if len(value) > SLICE:
            return True
        items: Any = value
    else:
        items = value.values()
    return any(isinstance(v, dict | list) and _has_long(v) for v in items)


def _enter(value: object, path: set[int]) -> None:
    if id(value) in path:
        raise ValueError("Circular reference detected")
    path.add(id(value))


def encode_small(value: Any) -> str | None:
    """The JSON text of ``value`` made at once, or None when it holds a list long enough to
    be encoded with :func:`encode`. Raises TypeError or ValueError as ``json.dumps`` does."""
    parts: list[str] = []
    for piece in _pieces(value, set()):
        if piece is _BREAK:
            return None
        parts.append(piece)
    return "".join(parts)


async def encode(value: Any) -> str:
    """The JSON text of ``value``, as ``json.dumps(value, separators=(",", ":"))`` gives it,
    with a checkpoint after each slice of a long list. Raises TypeError or ValueError as
    ``json.dumps`` does. The value must not change meanwhile (encode a frozen description)."""
    text = await encode_while(value, None)
    assert text is not None
    return text


async def encode_while(value: Any, wanted: Callable[[], bool] | None) -> str | None:
    """:func:`encode`, given up (None) when ``wanted()`` turns false at a checkpoint: the
    text is no longer needed (a newer write of the description began)."""
    parts: list[str] = []
    for piece in _pieces(value, set()):
        if piece is _BREAK:
            await anyio.lowlevel.checkpoint()
            if wanted is not None and not wanted():
                return None
        else:
            parts.append(piece)
    return "".join(parts)


SMALL_TEXT = 1 << 20
"""A text shorter than this is decoded in one C call (a few milliseconds)."""

_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
"""The decoder's C scanner: the value at an index of a text and the index after it."""
_SPACE = re.compile(r"[ \t\n\r]*")


async def decode(text: str) -> Any:
    """The value of the JSON text ``text``, as ``json.loads`` gives it (raising its
    ``JSONDecodeError`` on bad text), with a checkpoint every :data:`SLICE` items of a long
    list when the text is long. Objects are walked into; each item of a list is decoded in
    one C call (an argument list, a file name)."""
    if len(text) < SMALL_TEXT:
        return json.loads(text)
    found: list[Any] = []
    parts = _value(text, _skip(text, 0), found)
    try:
        while True:
            next(parts)
            await anyio.lowlevel.checkpoint()
    except StopIteration as done:
        end = _skip(text, done.value)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return found[0]


def _skip(text: str, idx: int) -> int:
    match = _SPACE.match(text, idx)
    assert match is not None
    return match.end()


def _item(text: str, idx: int) -> tuple[Any, int]:
    try:
        return _scan(text, idx)
    except StopIteration as err:
        raise json.JSONDecodeError("Expecting value", text, err.value) from None


def _value(text: str, idx: int, out: list[Any]) -> Generator[None, None, int]:
    """Decode the value at ``idx`` (no space before it) into ``out``; yields between slices
    of a long list; returns the index after the value."""
    opening = text[idx:idx + 1]
    if opening == "{":
        obj: dict[str, Any] = {}
        idx = _skip(text, idx + 1)
        if text[idx:idx + 1] == "}":
            out.append(obj)
            return idx + 1
        while True:
            if text[idx:idx + 1] != '"':
                raise json.JSONDecodeError(
                    "Expecting property name enclosed in double quotes", text, idx)
            key, idx = _item(text, idx)
            idx = _skip(text, idx)
            if text[idx:idx + 1] != ":":
                raise json.JSONDecodeError("Expecting ':' delimiter", text, idx)
            held: list[Any] = []
            idx = _skip(text, (yield from _value(text, _skip(text, idx + 1), held)))
            obj[key] = held[0]
            if text[idx:idx + 1] == "}":
                out.append(obj)
                return idx + 1
            if text[idx:idx + 1] != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, idx)
            idx = _skip(text, idx + 1)
    if opening == "[":
        items: list[Any] = []
        idx = _skip(text, idx + 1)
        if text[idx:idx + 1] == "]":
            out.append(items)
            return idx + 1
        while True:
            item, idx = _item(text, idx)
            items.append(item)
            if len(items) % SLICE == 0:
                yield
            idx = _skip(text, idx)
            if text[idx:idx + 1] == "]":
                out.append(items)
                return idx + 1
            if text[idx:idx + 1] != ",":
                raise json.JSONDecodeError("Expecting ',' delimiter", text, idx)
            idx = _skip(text, idx + 1)
    value, idx = _item(text, idx)
    out.append(value)
    return idx
