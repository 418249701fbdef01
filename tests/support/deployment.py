"""What `make serve` deploys, read from deploy/supervisord.conf, for the tests that hold it
to a rule."""

import argparse
import shlex

from daphne.cli import CommandLineInterface

from tests.support import PROJECT_ROOT


def deployed_daphne() -> tuple[str, argparse.Namespace]:
    """The program of each worker's daphne and its parsed options: the part of the
    `command=` line after deploy/reuseport.py's `--`."""
    conf = (PROJECT_ROOT / "deploy" / "supervisord.conf").read_text()
    command = next(line for line in conf.splitlines() if line.startswith("command="))
    wrapper = shlex.split(command.removeprefix("command="))
    daphne = wrapper[wrapper.index("--") + 1 :]  # deploy/reuseport.py HOST:PORT -- daphne …
    return daphne[0], CommandLineInterface().parser.parse_args(daphne[1:])
