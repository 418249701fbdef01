"""The in-process channel layer, for one process with no services (the laptop default)."""

import time

from channels.layers import InMemoryChannelLayer

# The prefix of every channel a process makes (the fan-out's, each fallback connection's, the
# health check's). channels-redis reads a process's channels from one Redis list per prefix,
# and its receivers take turns on one lock: a channel with another prefix waits for the
# holder's blocking pop (5 s) before its own list is read. One prefix, one list.
CHANNEL_PREFIX = "chat"


class InProcessChannelLayer(InMemoryChannelLayer):
    """Channels' InMemoryChannelLayer, with its expiry sweep run at most once a second.

    The stock layer walks every channel and every group member on each send and receive to
    drop expired messages (after `expiry`, 60 s) and memberships (after `group_expiry`,
    24 h). With a hundred busy rooms that walk was a tenth of the server's CPU (py-spy,
    docs/performance.md); expiring things up to a second late changes nothing.
    """

    sweep_interval = 1.0

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._swept_at = 0.0

    def _clean_expired(self) -> None:
        now = time.monotonic()
        if now - self._swept_at >= self.sweep_interval:
            self._swept_at = now
            super()._clean_expired()
