"""The protocol's JSON Schema (chat/protocol/schema.json), for checking frames in tests."""

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from tests.support import PROJECT_ROOT

SCHEMA_PATH = PROJECT_ROOT / "chat" / "protocol" / "schema.json"


@functools.cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def validator(definition: str) -> Draft202012Validator:
    """A validator for one definition of the schema (e.g. "server.joined")."""
    return Draft202012Validator({"$ref": f"#/$defs/{definition}", "$defs": schema()["$defs"]})


def frame_types(side: str) -> set[str]:
    """The frame types the schema defines for "client" or "server"."""
    prefix = f"{side}."
    return {name.removeprefix(prefix) for name in schema()["$defs"] if name.startswith(prefix)}


def problem(side: str, frame: Any) -> str | None:
    """Why `frame` breaks the contract as a `side` ("client"/"server") frame, or None."""
    kind = frame.get("type") if isinstance(frame, dict) else None
    if not isinstance(kind, str) or kind not in frame_types(side):
        return f"no {side} frame has type {kind!r}"
    error = best_match(validator(f"{side}.{kind}").iter_errors(frame))
    if error is None:
        return None
    return f"{side} frame {kind!r}: {error.message} at {error.json_path}"


def named_fields(frame: dict[str, Any]) -> dict[str, Any]:
    """A client frame of a known type without the fields its definition does not name,
    which the server ignores (and a conforming client does not send)."""
    kind = frame.get("type")
    if not isinstance(kind, str) or kind not in frame_types("client"):
        return frame
    named = schema()["$defs"][f"client.{kind}"]["properties"]
    return {key: value for key, value in frame.items() if key in named}


def check_server_frame(frame: Any) -> None:
    """Fail the test if `frame` is not a frame the server may send."""
    trouble = problem("server", frame)
    assert trouble is None, f"{trouble}\n{frame!r}"[:2000]


def check_client_frame(frame: Any) -> None:
    """Fail the test if `frame` is not a frame a conforming client may send."""
    trouble = problem("client", frame)
    assert trouble is None, f"{trouble}\n{frame!r}"[:2000]
