"""Sockets driven through the real ASGI application in this process (WebsocketCommunicator):
the protocol, permissions, limits, presence, and delivery under injected faults."""
