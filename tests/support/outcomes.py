"""What a socket action came to in the permission tables: "ok", or its error's code, taken
from the protocol's own ErrorCode so that a renamed code cannot leave a table passing."""

from chat.protocol.errors import ErrorCode

OK = "ok"
AUTH = ErrorCode.AUTH_REQUIRED
NOT_JOINED = ErrorCode.NOT_JOINED
FORBIDDEN = ErrorCode.FORBIDDEN
NOT_FOUND = ErrorCode.NOT_FOUND
ARCHIVED = ErrorCode.ROOM_ARCHIVED
