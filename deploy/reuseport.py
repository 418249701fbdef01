"""Give a server a listening socket of its own on a shared host:port, then become the server.

    reuseport.py HOST:PORT [--backlog N] -- COMMAND [ARG ...]
    reuseport.py HOST:PORT --check

deploy/supervisord.conf starts each daphne worker through this: it binds a TCP socket with
SO_REUSEPORT to HOST:PORT, listens, puts it on file descriptor 0 (where supervisor's
fcgi-program put its shared socket, so the command says `daphne --fd 0`) and execs COMMAND,
so the worker's pid, signals and logs are daphne's. Every worker has its own socket and
accept queue, and the kernel spreads incoming connections over them by a hash of each
connection's addresses and ports; on one shared socket, whichever worker woke first took
every connection waiting (all 40 of a storm on fresh workers). A worker that dies loses the
connections still in its own accept queue (their clients reconnect); the others never see
them. `--check` fails if something already listens on HOST:PORT: SO_REUSEPORT would
otherwise let a second `make serve` of the same user join the first one's port silently and
take a share of its connections.

Standard library only, and IPv4 only: daphne adopts the descriptor as an AF_INET socket.
"""

import argparse
import os
import socket
import sys


def address(text: str) -> tuple[str, int]:
    """HOST:PORT, the host resolved to one IPv4 address."""
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    try:
        infos = socket.getaddrinfo(host, int(port), socket.AF_INET, socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise argparse.ArgumentTypeError(
            f"{host!r} has no IPv4 address ({error.strerror}); daphne --fd adopts IPv4 sockets"
        ) from None
    return infos[0][4][0], int(port)


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """A socket listening on host:port that other SO_REUSEPORT sockets of this user may share."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, as Twisted
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def is_free(host: str, port: int) -> bool:
    """Nothing listens on host:port: a bind without SO_REUSEPORT would succeed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
        return True


def main(argv: list[str]) -> None:
    head, dash, command = argv, [], []
    if "--" in argv:
        split = argv.index("--")
        head, dash, command = argv[:split], ["--"], argv[split + 1 :]
    parser = argparse.ArgumentParser(prog="reuseport.py", description=__doc__.split("\n")[0])
    parser.add_argument("address", type=address, help="HOST:PORT to listen on")
    parser.add_argument("--backlog", type=int, default=2048, help="listen backlog (2048)")
    parser.add_argument("--check", action="store_true", help="fail if HOST:PORT is in use")
    args = parser.parse_args(head)
    host, port = args.address
    if args.check:
        if command or dash:
            parser.error("--check takes no command")
        if not is_free(host, port):
            sys.exit(f"reuseport.py: {host}:{port} is already in use (another `make serve`?)")
        return
    if not command:
        parser.error("no command: reuseport.py HOST:PORT -- COMMAND [ARG ...]")
    if args.backlog < 1:
        parser.error("--backlog must be at least 1")
    try:
        sock = listening_socket(host, port, args.backlog)
    except OSError as error:
        sys.exit(f"reuseport.py: cannot listen on {host}:{port}: {error.strerror}")
    os.dup2(sock.fileno(), 0)  # inheritable: dup2's default
    sock.close()
    try:
        os.execvp(command[0], command)
    except OSError as error:
        sys.exit(f"reuseport.py: cannot run {command[0]!r}: {error.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
