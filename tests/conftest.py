"""The suite's fixtures, registered once: the modules in tests/support define them, and any
test in any tier asks for them by name (no test module imports another)."""

pytest_plugins = [
    "tests.support.environment",
    "tests.support.factories",
    "tests.support.sockets",
    "tests.support.live_server",
    "tests.support.browser",
    "tests.support.cluster",
]
