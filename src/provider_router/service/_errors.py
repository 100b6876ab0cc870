"""The one error shape of the route API, and how every failure becomes it.

Clients branch on ``error.code`` and show ``error.message``; ``error.details`` carries what a
program needs to act (the offending field, the per-candidate reasons). Keeping the mapping in
one place is what lets the API promise that no input, however malformed, produces a 500.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

MAX_FIELD_CHARS = 128
"""Field names come from the request; a client must not be able to make us echo megabytes."""


class ApiError(Exception):
    """An answer other than 2xx, already classified: status, machine code, human message."""

    def __init__(self, status: int, code: str, message: str,
                 details: dict[str, Any] | None = None,
                 headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers

    def body(self) -> bytes:
        return encode_error(self.code, self.message, self.details)


def encode_error(code: str, message: str, details: dict[str, Any]) -> bytes:
    payload = {"error": {"code": code, "message": message, "details": details}}
    try:
        return orjson.dumps(payload, default=str)
    except TypeError:
        # A string that is not valid UTF-8 (a lone surrogate) must not turn a 4xx into a 500.
        return orjson.dumps(_scrub(payload))


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {_scrub(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return _scrub(str(value))


def field_name(loc: tuple[int | str, ...], renames: dict[str, str] | None = None) -> str:
    """``("capabilities", 2)`` as ``capabilities[2]``; ``renames`` maps body names to the
    names the client used (a GET's ``capability`` parameter)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = renames.get(part, part) if renames and not out else part
            out = f"{out}.{name}" if out else name
    return (out or "body")[:MAX_FIELD_CHARS]


def invalid_field(field: str, message: str, **extra: Any) -> ApiError:
    field = field[:MAX_FIELD_CHARS]
    return ApiError(400, "invalid_field", f"{field}: {message}", {"field": field, **extra})


def from_validation(error: ValidationError, renames: dict[str, str] | None = None) -> ApiError:
    """The first problem names the field; all of them are listed for clients that fix in bulk."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    first = problems[0] if problems else {"type": "value_error", "loc": (), "msg": "invalid"}
    if first["type"] == "json_invalid":
        return ApiError(400, "invalid_json", f"the body is not valid JSON: {first['msg']}",
                        {"field": "body"})
    listed = [{"field": field_name(p["loc"], renames), "message": _message(p)}
              for p in problems[:20]]
    return ApiError(400, "invalid_field", f"{listed[0]['field']}: {listed[0]['message']}",
                    {"field": listed[0]["field"], "errors": listed})


def _message(problem: Any) -> str:
    kind = problem["type"]
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "required"
    if kind == "model_type" and not problem["loc"]:
        return "must be a JSON object"
    return str(problem["msg"])
