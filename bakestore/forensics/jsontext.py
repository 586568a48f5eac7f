"""JSON text for the report: exactly what ``json.dumps(value, ensure_ascii=False)`` writes, made
explicit for bytes and non-finite floats, and cheap to call a quarter of a million times."""

from __future__ import annotations

import base64
import json
import math
from json.encoder import encode_basestring
from typing import Any


def jsonable(value: Any) -> Any:
    """Make values JSON-safe and explicit: bytes and non-finite floats become tagged objects."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    return value


_PLAIN = (str, int, type(None))


def plain_values(values: list[Any]) -> list[Any]:
    """Row values made JSON-safe; the common all-plain row is returned without a walk."""
    for v in values:
        if type(v) not in _PLAIN and not (type(v) is float and math.isfinite(v)):
            return jsonable(values)
    return values


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# The C encoder behind json.dumps(value, ensure_ascii=False, default=_json_default), made once:
# json.dumps builds a new one on every call, which dominates for a quarter of a million small
# values. Compact separators, as json.dumps without indent.
_c_encoder: Any = None
_c_encoder_finite: Any = None
try:
    from _json import make_encoder as _make_c_encoder
    # No circular-reference markers: the encoder is shared (also between threads) and reports
    # are trees.
    _c_encoder = _make_c_encoder(None, _json_default, encode_basestring, None, ": ", ", ", False, False, True)
    # The same, raising ValueError for NaN/inf (which plain_values turns into {"$float": ...}).
    _c_encoder_finite = _make_c_encoder(None, _json_default, encode_basestring, None, ": ", ", ", False, False,
                                        False)
except ImportError:  # pragma: no cover - CPython always has it
    pass


def encode_json(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, default=_json_default)``, without its per-call setup."""
    if _c_encoder is None:  # pragma: no cover
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return "".join(_c_encoder(value, 0))


def encode_json_string(value: str) -> str:
    return encode_basestring(value)


def values_json(values: list[Any]) -> str:
    """``encode_json(plain_values(values))``: the JSON text of a recovered row's values.

    Bytes go through the encoder's default hook (the same ``{"$base64": ...}`` as jsonable);
    a NaN or infinity makes the strict encoder raise, and then plain_values tags it.
    """
    if _c_encoder_finite is not None:
        try:
            return "".join(_c_encoder_finite(values, 0))
        except ValueError:
            pass
    return encode_json(plain_values(values))
