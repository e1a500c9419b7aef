"""Errors a request can end in, each with its HTTP status and OpenAI error type."""

from __future__ import annotations

from pydantic import ValidationError

from manyicl.serve.protocol import ErrorInfo, ErrorResponse


class APIError(Exception):
    """Raised anywhere below the routes; the app turns it into OpenAI-style error JSON."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = (
            status,
            message,
            type,
            param,
            code,
        )

    def response(self) -> ErrorResponse:
        return ErrorResponse(
            error=ErrorInfo(message=self.message, type=self.type, param=self.param, code=self.code)
        )


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(400, message, param=param, code=code)


def not_found(message: str, param: str | None = None, code: str | None = None) -> APIError:
    return APIError(404, message, param=param, code=code)


def invalid(e: ValidationError) -> APIError:
    """A body that failed validation as a 400 naming the field (malformed JSON: no field)."""
    errors = e.errors()
    if errors[0]["type"] == "json_invalid":
        return bad_request(f"malformed JSON: {errors[0]['msg']}")
    # Of a union's failed members, the one that got furthest names the field best.
    first = max(errors, key=lambda err: len(field_path(err["loc"])))
    param = ".".join(field_path(first["loc"])) or None
    kind = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    return bad_request(f"{param}: {kind}" if param else kind, param)


_TYPE_TAGS = {"str", "int", "float", "bool", "dict", "list", "none"}


def field_path(loc: tuple) -> list[str]:
    """A validation error's location as field names and indices, without the tags pydantic
    puts in for union members (`str`, `list[InputMessage]`, `function-before[...]`)."""
    return [
        str(p)
        for p in loc
        if not (isinstance(p, str) and (p in _TYPE_TAGS or any(c in p for c in "[(-")))
    ]
