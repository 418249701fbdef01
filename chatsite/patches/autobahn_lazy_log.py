"""Autobahn pretty-prints a debug message on every connection, whether debug is logged or not.

`WebSocketProtocol._connectionMade` (autobahn/websocket/protocol.py) formats the protocol's
thirty-odd options with `pprint.pformat` and hands the text to `self.log.debug`, which drops
it unless debug logging is on. In a storm of handshakes that formatting was 12% of the
server's CPU (docs/performance.md, item 14). While `_connectionMade` runs, this patch has the
module's `pformat` return `Lazy`, which formats only if the log message is rendered, so a
site that turns debug logging on still reads the same text. Nothing else of autobahn that
calls `pformat` is touched: the name is put back as soon as `_connectionMade` returns (the
event loop's thread runs nothing else meanwhile).

The same holds for every frame: `dataReceived` and `sendData` log at debug level each read
and each write, their arguments made first by `hltype` and `hlval`, which colour the names
with `click.style` (5% of the server's time per ack, item 22 of docs/performance.md). In
the two modules that call them on the hot path (`autobahn.websocket.protocol` and
`autobahn.twisted.websocket`), those names are replaced for good by `Lazy` makers: each
call still returns an object that formats to the same text, but only if it is formatted.

Relies on `autobahn.websocket.protocol` naming `pprint.pformat` as `pformat`, and on
`_connectionMade` calling it once, for that debug message; and on both modules naming
`autobahn.util`'s `hltype` and `hlval` and calling them only to make a log message's
fields (`self.log.debug(..., name=hltype(...))`). `check()` asserts all of it, the calls by
the modules' syntax trees.
"""

import ast
import functools
import inspect
import pprint
from collections.abc import Callable
from typing import Any

from autobahn import util
from autobahn.twisted import websocket as twisted_websocket
from autobahn.websocket import protocol

from .checks import fail, require_source

PATCH = "autobahn_lazy_log"
DEBUG_CALL = 'self.log.debug("\\n{attrs}", attrs=pformat(configAttrLog))'

_connection_made = getattr(protocol.WebSocketProtocol, "_connectionMade", None)


class Lazy:
    """`make(value)`, made when (and each time) it is formatted into text."""

    __slots__ = ("make", "value")

    def __init__(self, make: Callable[[Any], str], value: Any) -> None:
        self.make = make
        self.value = value

    def __format__(self, spec: str) -> str:
        return format(self.make(self.value), spec)

    def __str__(self) -> str:
        return self.make(self.value)

    __repr__ = __str__


def lazily(make: Callable[[Any], str]) -> Callable[[Any], Lazy]:
    """A stand-in for `make` that defers it until its result is formatted."""

    def deferred(value: Any) -> Lazy:
        return Lazy(make, value)

    deferred.__wrapped__ = make  # type: ignore[attr-defined]
    return deferred


lazy_pformat = lazily(pprint.pformat)
LAZY_HIGHLIGHTS = {"hltype": lazily(util.hltype), "hlval": lazily(util.hlval)}
HIGHLIGHTING_MODULES = (protocol, twisted_websocket)


def _connection_made_lazily(self: protocol.WebSocketProtocol) -> None:
    formatter = protocol.pformat
    protocol.pformat = lazy_pformat
    try:
        _connection_made(self)
    finally:
        protocol.pformat = formatter


def check() -> None:
    # Once installed, the wrapper names what it wraps (`__wrapped__`): the source read here,
    # and by daphne_frames' check, is autobahn's.
    original = getattr(protocol.WebSocketProtocol, "_connectionMade", None)
    _check_highlights()
    if getattr(protocol, "pformat", None) is not pprint.pformat:
        raise fail(
            PATCH,
            "autobahn",
            "autobahn.websocket.protocol.pformat",
            "is no longer pprint.pformat",
        )
    require_source(
        PATCH,
        "autobahn",
        original,
        [DEBUG_CALL],
        label="autobahn WebSocketProtocol._connectionMade",
    )
    if inspect.getsource(inspect.unwrap(original)).count("pformat(") != 1:
        raise fail(
            PATCH,
            "autobahn",
            "autobahn WebSocketProtocol._connectionMade calling pformat only for its debug log",
            "no longer holds",
        )


LOG_METHODS = frozenset({"trace", "debug", "info", "warn", "error", "critical", "failure"})


def _calls(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def _is_log_call(node: ast.AST) -> bool:
    """`<anything>.log.<level>(...)`: a txaio logger's method."""
    if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
        return False
    owner = node.func.value
    owner_name = getattr(owner, "attr", None) or getattr(owner, "id", None)
    return node.func.attr in LOG_METHODS and owner_name == "log"


def _check_highlights() -> None:
    for module in HIGHLIGHTING_MODULES:
        tree = ast.parse(inspect.getsource(module))
        for name, lazy in LAZY_HIGHLIGHTS.items():
            if getattr(module, name, None) not in (getattr(util, name), lazy):
                raise fail(PATCH, "autobahn", f"{module.__name__}.{name}", "is no longer util's")
            calls = sum(_calls(node, name) for node in ast.walk(tree))
            as_fields = sum(
                _calls(keyword.value, name)
                for node in ast.walk(tree)
                if _is_log_call(node)
                for keyword in node.keywords
            )
            if calls != as_fields:
                raise fail(
                    PATCH,
                    "autobahn",
                    f"{module.__name__} calling {name} only for a log message's fields",
                    "no longer holds",
                )


def install() -> None:
    """Make `_connectionMade`'s debug message, and every debug message's highlighted
    fields, lazy (idempotent)."""
    functools.update_wrapper(_connection_made_lazily, _connection_made)
    protocol.WebSocketProtocol._connectionMade = _connection_made_lazily
    for module in HIGHLIGHTING_MODULES:
        for name, lazy in LAZY_HIGHLIGHTS.items():
            setattr(module, name, lazy)
