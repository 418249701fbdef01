"""Every place chatsite relies on a library's internals, checked when the server starts.

`PATCHES` below is the one list: each entry names what is patched or overridden, where,
what it relies on, the check that asserts those internals exist, and its tests
(tests/unit/test_patches.py checks each one passes, fails naming the internal, and is in effect).
`install_all` (called once by chatsite/asgi.py) runs every check before installing anything,
so a library upgrade that moves an internal stops the server at startup with
`InternalsChanged` naming the patch and the internal, instead of silently undoing a
measured gain or corrupting a connection. The libraries are pinned in requirements.txt.

The submodules are imported only when checked or installed: chat/realtime/publisher.py imports
`asgiref_loop`, and management commands and sync tests have no use for daphne and Twisted.
"""

import importlib
from dataclasses import dataclass
from typing import Any

from .checks import InternalsChanged


@dataclass(frozen=True)
class Patch:
    name: str
    where: str  # the code that relies on the internals
    relies_on: str
    check: str  # "module:function" in this package


PATCHES = (
    Patch(
        "twisted_writes",
        "chatsite/patches/twisted_writes.py (installed: FileDescriptor.write replaced)",
        "Twisted FileDescriptor.write/doWrite, tcp.Connection.writeSomeData and TLS; the "
        "fields dataBuffer, offset, _tempDataLen, connected, disconnecting, _writeDisconnected",
        "twisted_writes:check",
    ),
    Patch(
        "daphne_limits",
        "chatsite/patches/daphne_limits.py (installed: three WebSocketProtocol methods "
        "replaced; Server.create_application wrapped, a WebSocket's queue an ApplicationQueue)",
        "daphne WebSocketProtocol.serverSend/applicationCreateWorked/onMessage/onConnect "
        "(client_addr); Server.create_application making asyncio.Queue() through its module's "
        "`asyncio` name and handing the application its get; autobahn "
        "processData/consumeData/dropConnection/STATE_OPEN; Twisted's buffer fields and "
        "pause/resumeProducing",
        "daphne_limits:check",
    ),
    Patch(
        "daphne_frames",
        "chatsite/patches/daphne_frames.py, used by chat/realtime/fanout.py and consumers.py "
        "(broadcast frames built once, written to daphne's transports)",
        "daphne Server.create_application passing partial(handle_reply, protocol), "
        "handle_reply's checks, serverSend; autobahn sendMessage/sendFrame/sendData and the "
        "fields state, send_queue, _perMessageCompress, trackedTimings and the options "
        "logOctets, autoFragmentSize, maxMessagePayloadSize, maskServerFrames",
        "daphne_frames:check",
    ),
    Patch(
        "autobahn_lazy_log",
        "chatsite/patches/autobahn_lazy_log.py (installed: WebSocketProtocol._connectionMade "
        "wrapped; hltype and hlval made lazy in autobahn.websocket.protocol and "
        "autobahn.twisted.websocket)",
        "autobahn.websocket.protocol naming pprint.pformat as pformat; "
        "WebSocketProtocol._connectionMade calling it once, for its debug log of the options; "
        "both modules naming autobahn.util's hltype and hlval, and calling them only for a "
        "log message's fields",
        "autobahn_lazy_log:check",
    ),
    Patch(
        "daphne_upgrade",
        "chatsite/patches/daphne_upgrade.py (installed: daphne's WebSocketProtocol."
        "connectionMade wrapped)",
        "Twisted HTTPChannel registering itself as its transport's producer and keeping "
        "requests in `requests`; FileDescriptor.producer/unregisterProducer; daphne "
        "WebRequest.process handing over the transport before makeConnection and resuming "
        "through channel._networkProducer",
        "daphne_upgrade:check",
    ),
    Patch(
        "asgiref_loop",
        "chatsite/patches/asgiref_loop.py, read by chat/realtime/publisher.py",
        "asgiref SyncToAsync.threadlocal.main_event_loop and main_event_loop_pid, set by "
        "SyncToAsync.thread_handler",
        "asgiref_loop:check",
    ),
    Patch(
        "channels_consumer_dispatch",
        "chat/realtime/consumers.py ChatConsumer.dispatch and __call__ (subclass overrides)",
        "channels AsyncConsumer.dispatch doing nothing but get_handler_name, "
        "aclose_old_connections and the handler call; AsyncConsumer.__call__ doing nothing "
        "but set scope, channel layer and base_send and dispatch each message until "
        "StopConsumer",
        "channels_overrides:check_consumer_dispatch",
    ),
    Patch(
        "channels_layer_sweep",
        "chat/realtime/layers.py InProcessChannelLayer._clean_expired (a subclass override)",
        "channels InMemoryChannelLayer._clean_expired, called by receive and group_send",
        "channels_overrides:check_layer_sweep",
    ),
    Patch(
        "channels_session_send",
        "chat/realtime/transport.py RawSendMiddleware (the fallback stream's events skip the "
        "session send wrapper)",
        "channels InstanceSessionWrapper.send acting only on HTTP response types; "
        "the session, cookie, auth and base middlewares copying the scope",
        "channels_overrides:check_session_send",
    ),
)


def run_check(patch: Patch) -> None:
    """Run one patch's check (raises InternalsChanged)."""
    module, function = patch.check.split(":")
    getattr(importlib.import_module(f"{__name__}.{module}"), function)()


def check_all() -> None:
    """Run every check; raise one InternalsChanged listing every failure."""
    failures = []
    for patch in PATCHES:
        try:
            run_check(patch)
        except InternalsChanged as error:
            failures.append(str(error))
    if failures:
        raise InternalsChanged("\n".join(failures))


def install_all(settings: Any) -> None:
    """Check every patch, then install the ones that patch at runtime (idempotent)."""
    check_all()
    from . import autobahn_lazy_log, daphne_limits, daphne_upgrade, twisted_writes

    twisted_writes.install()
    autobahn_lazy_log.install()
    daphne_upgrade.install()
    daphne_limits.install(
        max_buffer_bytes=settings.CHAT_SOCKET_MAX_BUFFER_BYTES,
        max_queued_frames=settings.CHAT_SOCKET_MAX_QUEUED_FRAMES,
        page_low_water=settings.CHAT_PAGE_LOW_WATER_BYTES,
    )


__all__ = ["PATCHES", "InternalsChanged", "Patch", "check_all", "install_all", "run_check"]
