"""The wire contract: the frames clients and server exchange, their errors, and the JSON Schema."""
