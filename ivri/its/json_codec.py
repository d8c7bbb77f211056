"""JSON codec for the ITS message models: a tagged envelope, strict parsing, one error type.

The wire format is one JSON object::

    {"type": "cam", "message": {...the Cam model's fields...}}

``type`` is one of ``cam``, ``srem``, ``ssem``, ``spatem``, ``mapem``; ``message`` holds the
model's fields by their snake_case names (see :mod:`ivri.its.messages`), with absent optional
fields left out. Parsing is strict: ``"5"`` is not an integer and unknown keys are errors.
Any bad input raises :class:`MessageError` with a one-line reason, never anything else.
"""

from __future__ import annotations

import operator
from functools import cache, reduce
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, create_model

from ivri.its.errors import MessageError
from ivri.its.messages import MESSAGE_TYPES, Message, message_type

__all__ = ["DEFAULT_MAX_BYTES", "decode_json", "encode_json", "format_error"]

DEFAULT_MAX_BYTES = 64 * 1024  # far above any real message; bounds the work one datagram causes


def _envelope(kind: str) -> type:
    return create_model(
        f"{MESSAGE_TYPES[kind].__name__}Envelope",
        __config__=ConfigDict(extra="forbid", frozen=True),
        type=(Literal[kind], ...),
        message=(MESSAGE_TYPES[kind], ...),
    )


_ENVELOPES = {kind: _envelope(kind) for kind in MESSAGE_TYPES}
_ANY = TypeAdapter(
    Annotated[reduce(operator.or_, _ENVELOPES.values()), Field(discriminator="type")]
)


@cache
def _adapter(kind: str) -> TypeAdapter:
    return TypeAdapter(_ENVELOPES[kind])


def format_error(err: ValidationError, what: str = "message") -> str:
    """The first problem of a validation error as one line: where, and what is wrong."""
    first = err.errors(include_url=False)[0]
    loc = ".".join(_loc_part(p) for p in first["loc"]) or "(top level)"
    text = " ".join(first["msg"].removeprefix("Value error, ").split())
    more = err.error_count() - 1
    return f"{what}: {loc}: {text[:200]}" + (f" (and {more} more problems)" if more else "")


def _loc_part(part: str | int) -> str:
    # An unknown key is the sender's text: keep the error on one line and short.
    text = str(part)
    if not text.isprintable() or len(text) > 40:
        text = repr(text[:40])
    return text


def encode_json(msg: Message) -> bytes:
    """``msg`` as the JSON envelope, UTF-8, compact, without absent optional fields."""
    kind = getattr(type(msg), "KIND", None)
    if kind not in MESSAGE_TYPES or type(msg) is not MESSAGE_TYPES[kind]:
        raise MessageError(f"cannot encode {type(msg).__name__} as an ITS message")
    body = msg.model_dump_json(exclude_none=True)
    return f'{{"type":"{kind}","message":{body}}}'.encode()


def decode_json(
    data: bytes, kind: type | str | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Message:
    """Parse a JSON envelope into its message model.

    ``kind`` (a model class or a name such as ``"srem"``) makes any other type an error;
    ``None`` accepts every type. Raises :class:`MessageError` on any bad input.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise MessageError(f"JSON message must be bytes, not {type(data).__name__}")
    if len(data) > max_bytes:
        raise MessageError(f"JSON message is {len(data)} bytes, more than the limit of {max_bytes}")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MessageError(f"JSON message is not UTF-8: {exc.reason} at byte {exc.start}") from None
    adapter = _ANY if kind is None else _adapter(message_type(kind).KIND)
    try:
        envelope = adapter.validate_json(text, strict=True)
    except ValidationError as exc:
        raise MessageError(format_error(exc, "JSON message")) from None
    except (ValueError, RecursionError) as exc:  # pydantic-core limits, e.g. nesting depth
        raise MessageError(f"JSON message: {' '.join(str(exc).split())}") from None
    return envelope.message
