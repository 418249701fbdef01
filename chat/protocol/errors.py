"""Errors as values: services raise ChatError; the consumer turns it into one error frame."""

from django.db.models import TextChoices


class ErrorCode(TextChoices):
    BAD_REQUEST = "bad_request", "The frame is not valid."
    AUTH_REQUIRED = "auth_required", "Log in to do that."
    NOT_FOUND = "not_found", "No such room."
    NOT_JOINED = "not_joined", "Join the room first."
    FORBIDDEN = "forbidden", "You may not do that."
    TOO_LONG = "too_long", "The message is too long."
    ROOM_ARCHIVED = "room_archived", "The room is archived."
    RATE_LIMITED = "rate_limited", "Slow down: try again shortly."
    LIMIT_REACHED = "limit_reached", "A limit was reached."
    SERVER_ERROR = "server_error", "Something went wrong on the server; nothing was changed."
    UNAVAILABLE = "unavailable", "The server lost a service it needs for a moment; try again."


class ChatError(Exception):
    """A refusal the client should hear about, with a code from the protocol."""

    def __init__(
        self, code: ErrorCode, message: str | None = None, *, retry_after: float | None = None
    ) -> None:
        self.code = code
        self.message = message or code.label
        self.retry_after = retry_after  # seconds, for rate_limited
        super().__init__(f"{code.value}: {self.message}")
