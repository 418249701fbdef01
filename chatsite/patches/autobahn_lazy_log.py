"""Autobahn pretty-prints a debug message on every connection, whether debug is logged or not.

`WebSocketProtocol._connectionMade` (autobahn/websocket/protocol.py) formats the protocol's
thirty-odd options with `pprint.pformat` and hands the text to `self.log.debug`, which drops
it unless debug logging is on. In a storm of handshakes that formatting was 12% of the
server's CPU (docs/performance.md, item 14). While `_connectionMade` runs, this patch has the
module's `pformat` return `Lazy`, which formats only if the log message is rendered, so a
site that turns debug logging on still reads the same text. Nothing else of autobahn that
calls `pformat` is touched: the name is put back as soon as `_connectionMade` returns (the
event loop's thread runs nothing else meanwhile).

Relies on `autobahn.websocket.protocol` naming `pprint.pformat` as `pformat`, and on
`_connectionMade` calling it once, for that debug message; `check()` asserts both.
"""

import functools
import inspect
import pprint
from typing import Any

from autobahn.websocket import protocol

from .checks import fail, require_source

PATCH = "autobahn_lazy_log"
DEBUG_CALL = 'self.log.debug("\\n{attrs}", attrs=pformat(configAttrLog))'

_connection_made = getattr(protocol.WebSocketProtocol, "_connectionMade", None)


class Lazy:
    """`pprint.pformat(value)`, made when (and each time) it is formatted into text."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __format__(self, spec: str) -> str:
        return format(pprint.pformat(self.value), spec)

    def __str__(self) -> str:
        return pprint.pformat(self.value)

    __repr__ = __str__


def _connection_made_lazily(self: protocol.WebSocketProtocol) -> None:
    formatter = protocol.pformat
    protocol.pformat = Lazy
    try:
        _connection_made(self)
    finally:
        protocol.pformat = formatter


def check() -> None:
    # Once installed, the wrapper names what it wraps (`__wrapped__`): the source read here,
    # and by daphne_frames' check, is autobahn's.
    original = getattr(protocol.WebSocketProtocol, "_connectionMade", None)
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


def install() -> None:
    """Make `_connectionMade`'s debug message lazy (idempotent)."""
    functools.update_wrapper(_connection_made_lazily, _connection_made)
    protocol.WebSocketProtocol._connectionMade = _connection_made_lazily
