"""Group commit for sends: the sends that arrive while one batch is being written to the
database go together in the next, in one transaction and one trip to the database thread.

With one sender at a time a batch holds one message and nothing waits longer than before;
with a hundred at once, a hundred acks cost one thread hop and one commit instead of a
hundred of each. Each message still gets its own result (services.messages_create). A
batch whose connection died is written once more: its client_ids make that safe.
"""

from .. import services
from ..models import Message
from .batching import Batched

MAX_BATCH = 100

MessageWriter = Batched[services.MessageDraft, tuple[Message, bool]]


def message_writer() -> MessageWriter:
    """One event loop's group commit: `await writer.run(draft)` is the draft's (message,
    created), or its refusal raised."""
    # services.messages_create is looked up at each call, not bound now (a test replaces it).
    return Batched(
        lambda drafts: services.messages_create(drafts=drafts), what="message", limit=MAX_BATCH
    )
