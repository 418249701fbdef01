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
"""

from twisted.internet import abstract, tcp

_queued_write = abstract.FileDescriptor.write


def _write_now(self: abstract.FileDescriptor, data: bytes) -> None:
    if (
        isinstance(self, tcp.Connection)
        and not getattr(self, "TLS", False)
        and self.connected
        and not self.disconnecting
        and not self._writeDisconnected
        and not self._tempDataLen
        and self.offset == len(self.dataBuffer)  # nothing of an earlier write is waiting
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


def install() -> None:
    """Patch Twisted's FileDescriptor.write (idempotent)."""
    if abstract.FileDescriptor.write is not _write_now:
        abstract.FileDescriptor.write = _write_now
