"""Write socket data at once under daphne, instead of on the next turn of the event loop.

Twisted's `FileDescriptor.write` queues every write and asks the reactor to watch the socket
for writability; daphne's asyncio reactor turns that into two `epoll_ctl` calls and asyncio
selector bookkeeping per write (add the writer, then remove it once written). A broadcast to
a room is one small write to each of its sockets, so that bookkeeping was the largest single
cost of a fan-out (about a third of the server's CPU at 1,000 listeners: docs/performance.md).

asyncio's own transports write optimistically: try `send()` now, and only if the kernel
cannot take everything, queue the rest and watch for writability. This module gives Twisted's
plain TCP connections the same behaviour. Anything unusual (TLS inside Twisted, data already
queued, a closing connection, a send error) takes Twisted's own path unchanged, so ordering
and error handling stay Twisted's.

Relies on Twisted's write buffer: `dataBuffer[offset:]` plus `_tempDataLen` bytes in
`_tempDataBuffer` are what is queued, and `_writeDisconnected` marks a half-closed
connection; `check()` asserts they are all still there.
"""

from twisted.internet import abstract, tcp

from .checks import require_attrs, require_params, require_source

PATCH = "twisted_writes"
# The fields the fast path reads; daphne_limits.unsent_bytes reads the first three too.
BUFFER_FIELDS = ("dataBuffer", "offset", "_tempDataLen")
STATE_FIELDS = ("connected", "disconnecting", "_writeDisconnected")

# Truthy, so FileDescriptor.__init__ does not import (and so install) the global reactor.
_NO_REACTOR = object()

_queued_write = getattr(abstract.FileDescriptor, "write", None)
_queued_write_sequence = getattr(abstract.FileDescriptor, "writeSequence", None)


def writable_now(connection: tcp.Connection) -> bool:
    """Whether a plain TCP connection is open and holds nothing unsent: a write may go to
    its socket at once, overtaking nothing (daphne_frames' writer asks it too)."""
    return bool(
        connection.connected
        and not connection.disconnecting
        and not connection._aborting  # an abort discards what is sent meanwhile anyway
        and not connection._writeDisconnected
        and not connection._tempDataLen
        and connection.offset == len(connection.dataBuffer)
    )


def _write_now(self: abstract.FileDescriptor, data: bytes) -> None:
    if (
        isinstance(self, tcp.Connection)
        and not getattr(self, "TLS", False)
        and writable_now(self)
        and isinstance(data, bytes)
        and data
    ):
        sent = self.writeSomeData(data)
        if isinstance(sent, int):
            if sent == len(data):
                return
            data = data[sent:]
        # A partial write queues the rest; a lost connection is found by Twisted's doWrite.
    _queued_write(self, data)


def _write_sequence_now(self: abstract.FileDescriptor, iovec: list[bytes]) -> None:
    """writeSequence as one write on the same path: Twisted's HTTP writes each chunk of a
    streamed response (the HTTP fallback's event stream) as [size, data, CRLF] through it,
    so without this every event took the queue-and-watch round trip above."""
    if isinstance(self, tcp.Connection) and not getattr(self, "TLS", False):
        _write_now(self, b"".join(iovec))  # a str raises TypeError, as in Twisted's own
        return
    _queued_write_sequence(self, iovec)


def check_buffer_fields(patch: str) -> None:
    """A FileDescriptor still keeps its unsent bytes in BUFFER_FIELDS (set in `__init__`,
    drained by `doWrite`), so reading them measures what is queued."""
    unregistered = abstract.FileDescriptor(reactor=_NO_REACTOR)
    require_attrs(
        patch, "Twisted", unregistered, BUFFER_FIELDS, label="twisted FileDescriptor instance"
    )
    require_source(
        patch,
        "Twisted",
        getattr(abstract.FileDescriptor, "doWrite", None),
        [f"self.{name}" for name in BUFFER_FIELDS],
        label="twisted.internet.abstract.FileDescriptor.doWrite",
    )


def check() -> None:
    """Fail loudly unless Twisted still has every internal `_write_now` relies on."""
    write = getattr(abstract.FileDescriptor, "write", None)
    if write is _write_now:  # installed: check what it wraps
        write = _queued_write
    require_params(
        PATCH,
        "Twisted",
        write,
        ["self", "data"],
        label="twisted.internet.abstract.FileDescriptor.write",
    )
    require_source(
        PATCH,
        "Twisted",
        write,
        ["self._tempDataLen", "self.startWriting()"],
        label="twisted.internet.abstract.FileDescriptor.write",
    )
    sequence = getattr(abstract.FileDescriptor, "writeSequence", None)
    if sequence is _write_sequence_now:
        sequence = _queued_write_sequence
    require_params(
        PATCH,
        "Twisted",
        sequence,
        ["self", "iovec"],
        label="twisted.internet.abstract.FileDescriptor.writeSequence",
    )
    require_source(
        PATCH,
        "Twisted",
        sequence,
        ["self._tempDataLen", "self.startWriting()"],
        label="twisted.internet.abstract.FileDescriptor.writeSequence",
    )
    require_params(
        PATCH,
        "Twisted",
        getattr(tcp.Connection, "writeSomeData", None),
        ["self", "data"],
        label="twisted.internet.tcp.Connection.writeSomeData",
    )
    require_attrs(
        PATCH,
        "Twisted",
        tcp.Connection,
        ["TLS", "_aborting"],
        label="twisted.internet.tcp.Connection",
    )
    check_buffer_fields(PATCH)
    require_attrs(
        PATCH,
        "Twisted",
        abstract.FileDescriptor,
        STATE_FIELDS,
        label="twisted.internet.abstract.FileDescriptor",
    )


def install() -> None:
    """Check, then patch Twisted's FileDescriptor.write and writeSequence (idempotent)."""
    check()
    if abstract.FileDescriptor.write is not _write_now:
        abstract.FileDescriptor.write = _write_now
    if abstract.FileDescriptor.writeSequence is not _write_sequence_now:
        abstract.FileDescriptor.writeSequence = _write_sequence_now
