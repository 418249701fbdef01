"""Turns one `make bench` run into docs/performance.md and its chart.

Everything in the document is generated except the "## Analysis" section, which a person
writes and which a re-run keeps as it is.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ANALYSIS_HEADING = "## Analysis"
ANALYSIS_PLACEHOLDER = (
    "_To be written: where chatsite's server time goes (profiles of the fan-out path), "
    "what bounds each figure above, and what would move it. `make bench` keeps this section "
    "as it is on every re-run._"
)
SATURATED_PCT = 90.0  # a process at or above this share of its core is the bottleneck
DISTURBED_PCT = 10.0  # other work on the machine above this share of a core: unreliable
REFERENCE = "socketio"
# The servers chatsite is compared with; they are not held to chatsite's targets.
REFERENCES = {"socketio": "Socket.IO", "websockets": "bare Python websockets"}
TARGET_N = "1000"

# Targets of the issues: ratios to a reference in the same run at N = 1,000, and absolutes.
# A ratio is judged only when neither run was generator-bound (see generator_bound).
RATIO_TARGETS = [
    # (label, key in the broadcast result, comparison, bound, reference)
    ("delivered msg/s", "delivered_per_s", ">=", 0.7, "socketio"),  # issue 16
    ("server µs/delivery", "server_us_per_delivery", "<=", 1.5, "websockets"),  # issue 16
    ("server µs/delivery", "server_us_per_delivery", "<=", 3.0, "socketio"),
    ("p99 broadcast latency", "p99", "<=", 2.0, "socketio"),
]
ACK_P99_TARGET_MS = 50.0
# Issue 16's absolute targets, for chatsite on PostgreSQL (the redis configuration) where
# said: (workload, acks/s at least, p99 ms under).
PG_ACK_TARGETS = {"acks_own_rooms": (3000.0, 50.0), "acks": (1000.0, 150.0)}
HANDSHAKE_TARGET_S = 3.0  # 5,000 sockets connected and joined (issue 16)
HANDSHAKE_SOCKETS = 5000
ACK_WORKLOADS = [("acks", "one room"), ("acks_own_rooms", "a room each")]
REFERENCE_FIGURES = (
    "The issue's reference for Socket.IO's chat example at N = 1,000 (same machine kind): "
    "~58,000 delivered msg/s, p50/p99 24/33 ms, ~17 server µs/delivery."
)
IDLE_KB_TARGET = 20.0  # issue 16 (issue 9 asked for 50)
# Issue 16: two daphne workers on Redis deliver this many times one worker's msg/s at
# N = 1,000 (the `redis-2` configuration against `redis`, the same layer and database).
TWO_WORKERS_TARGET = 1.6
ONE_WORKER = "redis"
# Issue 12: chatsite's HTTP fallback against Socket.IO's long-polling, at every N.
HTTP_TARGETS = [
    ("delivered msg/s", "delivered_per_s", ">=", 1.0),
    ("p99 broadcast latency", "p99", "<=", 2.0),
]
DROPS_COLOR = "#c00"  # the chart's outline of a run that lost broadcasts


# Environment ------------------------------------------------------------------------------


def _command_output(args: list[str]) -> str | None:
    try:
        return subprocess.run(
            args, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _npm_version(bench: Path, package: str) -> str | None:
    try:
        return json.loads((bench / "node_modules" / package / "package.json").read_text())[
            "version"
        ]
    except (OSError, ValueError, KeyError):
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return None


def environment(bench: Path) -> dict[str, Any]:
    """The machine and the versions of everything under test."""
    python_packages = [
        "Django",
        "channels",
        "daphne",
        "channels-redis",
        "Twisted",
        "psycopg",
        "uvicorn",
        "websockets",
    ]
    versions: dict[str, str | None] = {}
    for name in python_packages:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _command_output(["node", "--version"]),
        "python_packages": versions,
        "npm_packages": {
            p: _npm_version(bench, p) for p in ("socket.io", "socket.io-client", "ws")
        },
    }


# Reading results --------------------------------------------------------------------------


def _p(result: dict[str, Any], pct: str) -> float | None:
    return (result.get("latency") or {}).get(f"{pct}_ms")


def _metric(result: dict[str, Any], key: str) -> float | None:
    return _p(result, key) if key in ("p50", "p99") else result.get(key)


def _pct(cpu_s: float | None, seconds: float | None) -> float | None:
    if cpu_s is None or not seconds:
        return None
    return 100 * cpu_s / seconds


def _server_pct(result: dict[str, Any]) -> float | None:
    window = result.get("window") or {}
    return _pct(window.get("server_cpu_s"), window.get("seconds"))


def _generator_pct(result: dict[str, Any]) -> float | None:
    return (result.get("window") or {}).get("generator_cpu_pct")


def generator_bound(result: dict[str, Any] | None) -> bool:
    """Whether the load generator, not the server, set a run's pace: all its processes
    together near the cores they may use, or one of them near its one core (a Node process
    is one event loop). Such a run measured the generator; its throughput and latency say
    nothing about the server, not even as a floor."""
    window = (result or {}).get("window") or {}
    total = window.get("generator_cpu_pct")
    if total is None:
        return False
    cores = window.get("generator_cores") or 1
    per_proc = window.get("generator_procs_pct") or [total]
    return total >= SATURATED_PCT * cores or max(per_proc) >= SATURATED_PCT


def _unfit(result: dict[str, Any]) -> str | None:
    """Why a run's figures cannot be compared with another's, if they cannot: the generator
    set its pace, or other work on the machine took the cores."""
    if generator_bound(result):
        return "generator-bound"
    other = _other_pct(result)
    if other is not None and other > DISTURBED_PCT:
        return f"disturbed (other CPU {other:.0f}%)"
    return None


def _flaws(*runs: tuple[str, dict[str, Any]]) -> list[str]:
    """Why a ratio between these (name, run) pairs cannot be judged: each unfit run named."""
    return [f"{name} {flaw}" for name, run in runs if (flaw := _unfit(run))]


def _generator_text(result: dict[str, Any]) -> str:
    """'93% of 1 core, 3 processes' for the bounds and notes."""
    window = result.get("window") or {}
    cores = window.get("generator_cores") or 1
    procs = len(window.get("generator_procs_pct") or [None])
    return (
        f"{_fmt(_generator_pct(result))}% of {cores} core{'s' if cores > 1 else ''}, "
        f"{procs} process{'es' if procs > 1 else ''}"
    )


def _other_pct(result: dict[str, Any]) -> float | None:
    """Other processes' CPU; clamped at 0, as tick rounding can take it a little below."""
    other = (result.get("window") or {}).get("other_cpu_pct")
    return None if other is None else max(0.0, other)


def _runs(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every measured run of a configuration, named for notes."""
    runs = [(f"broadcast N = {int(n):,}", r) for n, r in config["broadcast"].items()]
    runs += [
        (f"broadcast N = {int(TARGET_N):,}, round {i}", r)
        for i, r in enumerate(broadcast_rounds(config)[1:], start=2)
    ]
    runs += [(f"broadcast over HTTP, N = {int(n):,}", r) for n, r in _http_runs(config)]
    runs += [(f"acks, {rooms}", config[w]) for w, rooms in ACK_WORKLOADS if w in config]
    if "idle" in config:  # absent when the run left the workload out (--workloads)
        runs.append(("idle", config["idle"]))
    return runs


def _http_runs(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The broadcast runs over HTTP (fallback or long-polling) of a configuration, if any."""
    return list((config.get("broadcast_http") or {}).items())


def broadcast_rounds(config: dict[str, Any]) -> list[dict[str, Any]]:
    """A configuration's broadcast runs at N = 1,000, round by round (`bench/run.py
    --rounds`): the first is the one in the tables, the others were measured after the
    whole run, each server in turn. Empty without a broadcast at N = 1,000."""
    first = (config.get("broadcast") or {}).get(TARGET_N)
    return [first, *config.get("broadcast_rounds", [])] if first else []


def _rounds_ratio(
    mine: list[dict[str, Any]],
    theirs: list[dict[str, Any]],
    metric: str,
    bound: float,
    *,
    names: tuple[str, str],
    flaws_of_all: Sequence[str] = (),
) -> tuple[float | None, str | None, bool]:
    """(ratio, text, not judged) of `metric` between two configurations' runs, paired round
    by round: the median of the rounds whose two runs were both fit to compare (and none if
    `flaws_of_all` rules out every round). With one round, that round's ratio. A machine
    whose speed wanders by a fifth within minutes moves one run's ratio across a bound; the
    median of interleaved rounds does not follow one slow minute."""
    judged: list[float] = []
    unjudged: list[float] = []
    flaws: list[str] = []
    for a, b in zip(mine, theirs, strict=False):
        x, y = _metric(a, metric), _metric(b, metric)
        if x is None or not y:
            continue
        found = _flaws((names[0], a), (names[1], b)) + list(flaws_of_all)
        (unjudged if found else judged).append(x / y)
        flaws += [flaw for flaw in found if flaw not in flaws]
    if not judged:
        if not unjudged:
            return None, None, False
        shown = _ratio(statistics.median(unjudged), bound)
        return None, f"{shown}, not judged: {' and '.join(flaws)}", True
    ratio = statistics.median(judged)
    text = _ratio(ratio, bound) or ""
    if len(judged) + len(unjudged) > 1:
        each = ", ".join(_ratio(r, bound) or "" for r in judged)
        text += f" (median of {len(judged)} round{'s' if len(judged) > 1 else ''}: {each}"
        if unjudged:
            text += f"; {len(unjudged)} not judged: {' and '.join(flaws)}"
        text += ")"
    return ratio, text, False


def _transport_problems(result: dict[str, Any]) -> list[str]:
    """What the HTTP transport did wrong in a run: refused POSTs, streams the server ended,
    Socket.IO disconnects (the generator's own closes at the end are not counted)."""
    stats = result.get("transport_stats") or {}
    problems = []
    if stats.get("post_errors"):
        samples = "; ".join(stats.get("post_error_samples") or [])
        problems.append(f"{stats['post_errors']:,} of {stats['posts']:,} POSTs failed ({samples})")
    closes = stats.get("server_closes") or {}
    if closes:
        codes = ", ".join(f"{count:,} x {code}" for code, count in sorted(closes.items()))
        problems.append(f"the server closed streams ({codes})")
    if stats.get("stream_ends"):
        problems.append(f"{stats['stream_ends']:,} streams ended without a close event")
    if stats.get("stream_errors"):
        problems.append("stream errors: " + "; ".join(stats["stream_errors"]))
    disconnects = stats.get("disconnects") or {}
    if disconnects:
        reasons = ", ".join(f"{count:,} x {why}" for why, count in sorted(disconnects.items()))
        problems.append(f"Socket.IO disconnects ({reasons})")
    return problems


def _missing(result: dict[str, Any]) -> int | None:
    """Broadcasts of an ack run that never reached a socket of their room."""
    return result.get("broadcasts_missing")


def _missing_text(result: dict[str, Any]) -> str:
    missing, expected = _missing(result), result.get("broadcasts_expected")
    if missing is None:
        return "n/a"
    if not missing or not expected:
        return f"{missing:,}"
    return f"{missing:,} of {expected:,} ({100 * missing / expected:.0f}%)"


def _configs(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(results["configs"].items())


def _ok(config: dict[str, Any]) -> bool:
    return not config.get("skipped") and not config.get("failed")


def one_line(result: dict[str, Any]) -> str:
    """A progress line for the console."""
    workload = result.get("workload")
    if workload == "broadcast":
        return (
            f"{result['delivered_per_s']:,.0f} deliveries/s, p50/p99 "
            f"{_p(result, 'p50')}/{_p(result, 'p99')} ms, "
            f"{_fmt(result.get('server_us_per_delivery'), 1)} server µs/delivery, "
            f"dropped {result['dropped']}, generator CPU {_generator_pct(result):.0f}%"
        )
    if workload == "acks":
        return (
            f"{result['acks_per_s']:,.0f} acks/s, p50/p99 {_p(result, 'p50')}/"
            f"{_p(result, 'p99')} ms, timeouts {result['ack_timeouts']}, "
            f"broadcasts missing {_missing_text(result)}, "
            f"generator CPU {_generator_pct(result):.0f}%"
        )
    if workload == "idle":
        return (
            f"{result['sockets']} sockets, RSS {result['rss_before_kb']:,} → "
            f"{result['rss_after_kb']:,} kB, {_fmt(result.get('kb_per_socket'), 1)} KB/socket, "
            f"connected in {_fmt(result['connect']['seconds'], 1)} s "
            f"({_fmt(result.get('connect_cpu_s'), 1)} s of server CPU), "
            f"closed in {_fmt(result.get('close_s'), 1)} s "
            f"({_fmt(result.get('close_cpu_s'), 1)} s of server CPU)"
        )
    return json.dumps(result)[:200]


def _storm_bounds(label: str, idle: dict[str, Any] | None) -> list[str]:
    """What set the handshake storm's pace: the server's core, or the waits of each socket's
    handshake and join (Redis and database round trips, the generator's handshakes in
    flight) while the core had time to spare."""
    if not idle or idle.get("connect_cpu_s") is None or not idle["connect"].get("seconds"):
        return []
    seconds, cpu = idle["connect"]["seconds"], idle["connect_cpu_s"]
    busy = 100 * cpu / seconds
    where = f"{label}, storm of {idle['connect']['connected']:,} sockets"
    if (idle.get("generator_cpu_pct") or 0) >= SATURATED_PCT:
        return [f"**{where}: generator-bound** (generator {idle['generator_cpu_pct']:.0f}%)."]
    if busy >= SATURATED_PCT:
        return [f"{where}: bounded by the server's one core ({busy:.0f}% busy over {seconds} s)."]
    return [
        f"{where}: the server was busy {busy:.0f}% of its {seconds} s ({cpu} s of CPU): the "
        "rest of the time its handshakes and joins waited (on Redis, the database or the "
        "generator), so a faster storm needs fewer waits per socket more than less CPU."
    ]


def _fmt(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


# Targets ----------------------------------------------------------------------------------


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each chatsite configuration against each target of the issue: value, bound, met."""
    reference = results["configs"].get(REFERENCE, {})
    rows = []
    for key, config in _configs(results):
        if key in REFERENCES or not _ok(config):
            continue
        mine = config["broadcast"].get(TARGET_N)
        for label, metric, op, bound, ref_key in RATIO_TARGETS:
            ref_config = results["configs"].get(ref_key, {})
            theirs = broadcast_rounds(ref_config) if _ok(ref_config) else []
            ratio, value, not_judged = _rounds_ratio(
                broadcast_rounds(config), theirs, metric, bound, names=("chatsite", ref_key)
            )
            met = None if ratio is None else (ratio >= bound if op == ">=" else ratio <= bound)
            rows.append(
                {
                    "config": key,
                    "target": f"{label} {op} {bound:g}x {REFERENCES[ref_key]}",
                    "value": value,
                    "not_judged": not_judged,
                    "met": met,
                }
            )
        if mine and (mine.get("workers") or 1) > 1:
            rows.append(_workers_target(key, mine, results))
        ref_http = dict(_http_runs(reference)) if _ok(reference) else {}
        for n, mine_http in _http_runs(config):
            for label, metric, op, bound in HTTP_TARGETS:
                ratio, value, not_judged = None, None, False
                if n in ref_http:
                    a, b = _metric(mine_http, metric), _metric(ref_http[n], metric)
                    ratio = a / b if a is not None and b else None
                    value = _ratio(ratio, bound)
                    flaws = _flaws(("chatsite", mine_http), ("long-polling", ref_http[n]))
                    if flaws:
                        ratio = None
                        not_judged = True
                        value = f"{value}, not judged: {' and '.join(flaws)}"
                met = None if ratio is None else (ratio >= bound if op == ">=" else ratio <= bound)
                rows.append(
                    {
                        "config": key,
                        "target": f"over HTTP, N = {int(n):,}: {label} {op} {bound:g}x "
                        "Socket.IO long-polling",
                        "value": value,
                        "not_judged": not_judged,
                        "met": met,
                    }
                )
        broadcasts = [*config["broadcast"].values(), *broadcast_rounds(config)[1:]]
        dropped = sum(r["dropped"] + r["late"] for r in broadcasts)
        missing = sum(_missing(config.get(w) or {}) or 0 for w, _rooms in ACK_WORKLOADS)
        rows.append(
            {
                "config": key,
                "target": "zero messages dropped (broadcast runs; broadcasts in the ack runs)",
                "value": f"{dropped:,} dropped or late; {missing:,} missing",
                "met": dropped == 0 and missing == 0,
            }
        )
        for workload, rooms in ACK_WORKLOADS:
            if workload not in config:
                continue
            ack_p99 = _p(config[workload], "p99")
            rows.append(
                {
                    "config": key,
                    "target": f"ack p99 < {ACK_P99_TARGET_MS:g} ms "
                    f"({config[workload]['senders']} senders, {rooms})",
                    "value": f"{_fmt(ack_p99, 1)} ms",
                    "met": None if ack_p99 is None else ack_p99 < ACK_P99_TARGET_MS,
                }
            )
        if key == "redis":
            for workload, (rate_min, p99_max) in PG_ACK_TARGETS.items():
                acks = config.get(workload) or {}
                rate, p99 = acks.get("acks_per_s"), _p(acks, "p99")
                rooms = dict(ACK_WORKLOADS)[workload]
                rows.append(
                    {
                        "config": key,
                        "target": f"≥ {rate_min:,.0f} acks/s and p99 < {p99_max:g} ms "
                        f"({acks.get('senders', '?')} senders, {rooms})",
                        "value": f"{_fmt(rate)} acks/s, p99 {_fmt(p99, 1)} ms",
                        "met": None
                        if rate is None or p99 is None
                        else rate >= rate_min and p99 < p99_max,
                    }
                )
        idle = config.get("idle") or {}
        if idle.get("sockets") and (idle.get("connect") or {}).get("seconds") is not None:
            # Scaled to 5,000 sockets when the run opened another number.
            seconds = idle["connect"]["seconds"] * HANDSHAKE_SOCKETS / idle["sockets"]
            # The generator's one process opens every socket: near its core, it set the pace.
            gen = idle.get("generator_cpu_pct")
            bound = gen is not None and gen >= SATURATED_PCT
            rows.append(
                {
                    "config": key,
                    "target": f"{HANDSHAKE_SOCKETS:,} sockets connected and joined in "
                    f"≤ {HANDSHAKE_TARGET_S:g} s",
                    "value": f"{seconds:.1f} s"
                    + (
                        ""
                        if idle["sockets"] == HANDSHAKE_SOCKETS
                        else f" (from {idle['sockets']:,})"
                    )
                    + (f", not judged: generator-bound ({gen:.0f}%)" if bound else ""),
                    "not_judged": bound,
                    "met": None if bound else seconds <= HANDSHAKE_TARGET_S,
                }
            )
        kb = idle.get("kb_per_socket")
        if not idle:
            continue
        rows.append(
            {
                "config": key,
                "target": f"≤ {IDLE_KB_TARGET:g} KB server memory per idle socket",
                "value": f"{_fmt(kb, 1)} KB",
                "met": None if kb is None else kb <= IDLE_KB_TARGET,
            }
        )
    return rows


def _workers_target(key: str, mine: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Several workers' delivered msg/s against one worker's, at N = 1,000: judged only when
    neither run was generator-bound or disturbed, and no worker shared a core with the
    generator (on 2 cores one must: the machine then cannot judge it)."""
    one = results["configs"].get(ONE_WORKER) or {}
    theirs = broadcast_rounds(one) if _ok(one) else []
    shared = []
    if mine.get("workers_share_generator_cores"):
        shared.append("the workers shared the generator's cores (too few cores to judge)")
    ratio, value, not_judged = _rounds_ratio(
        broadcast_rounds(results["configs"][key]),
        theirs,
        "delivered_per_s",
        TWO_WORKERS_TARGET,
        names=(key, ONE_WORKER),
        flaws_of_all=shared,
    )
    return {
        "config": key,
        "target": f"delivered msg/s >= {TWO_WORKERS_TARGET:g}x one worker "
        f"({mine['workers']} workers against `{ONE_WORKER}`)",
        "value": value,
        "not_judged": not_judged,
        "met": None if ratio is None else ratio >= TWO_WORKERS_TARGET,
    }


def _workers_text(result: dict[str, Any]) -> str | None:
    """'2 workers: 48% and 51% of a core each, holding 500 and 501 sockets' for a run served
    by several workers (the sockets: how the kernel spread the connections over them)."""
    window = result.get("window") or {}
    split, seconds = window.get("server_cpu_split_s"), window.get("seconds")
    if not split or len(split) < 2 or not seconds:
        return None
    shares = " and ".join(f"{100 * s / seconds:.0f}%" for s in split)
    text = f"{len(split)} workers: {shares} of a core each"
    sockets = window.get("server_sockets")
    if sockets and len(sockets) == len(split):
        text += ", holding " + " and ".join(f"{n:,}" for n in sockets) + " sockets"
    return text


def _ratio(ratio: float | None, bound: float) -> str | None:
    """Two decimals, or three where two would round onto the bound and hide the verdict."""
    if ratio is None:
        return None
    return f"{ratio:.3f}x" if round(ratio, 2) == bound else f"{ratio:.2f}x"


def bounds(results: dict[str, Any]) -> list[str]:
    """Plain statements of what limited each figure, from the CPU each side used."""
    lines = []
    for _key, config in _configs(results):
        if not _ok(config):
            continue
        label = config["label"]
        broadcasts = [
            (f"{label}, broadcast N = {int(n):,}", r) for n, r in config["broadcast"].items()
        ]
        broadcasts += [
            (f"{config['http_label']}, broadcast N = {int(n):,}", r) for n, r in _http_runs(config)
        ]
        for where, result in broadcasts:
            server, gen = _server_pct(result), _generator_pct(result)
            if generator_bound(result):
                lines.append(
                    f"**{where}: generator-bound** (generator {_generator_text(result)}; "
                    f"server {_fmt(server)}%): the generator, not the server, set the pace, so "
                    "this run's msg/s and latencies measure the generator; its ratios are not "
                    "judged. Give the generator more cores or processes (`--generator-procs`)."
                )
            elif workers := _workers_text(result):
                shared = (
                    "; each shared a core with the generator (too few cores here)"
                    if result.get("workers_share_generator_cores")
                    else ""
                )
                lines.append(f"{where}: {workers}{shared} (generator {_fmt(gen)}%).")
            elif server is not None and server >= SATURATED_PCT:
                lines.append(
                    f"{where}: bounded by the server's one core ({server:.0f}% busy; "
                    f"generator {_fmt(gen)}%)."
                )
            elif (_other_pct(result) or 0) > DISTURBED_PCT:
                lines.append(
                    f"{where}: disturbed: other processes used {_other_pct(result):.0f}% of a "
                    f"core (server {_fmt(server)}%, generator {_fmt(gen)}%), so neither side had "
                    "its core; this run bounds nothing."
                )
            else:
                lines.append(
                    f"{where}: neither side saturated (server {_fmt(server)}%, generator "
                    f"{_fmt(gen)}%): the one-message-in-flight loop is bounded by the round "
                    "trip, each side waiting for the other."
                )
            services = (result.get("window") or {}).get("services_cpu_s")
            if services and result.get("deliveries"):
                window = result["window"]["seconds"]
                by_name = (result.get("window") or {}).get("services_cpu_by_name_s") or {}
                redis_s = by_name.get("redis-server")
                lines.append(
                    f"{where}: Redis and PostgreSQL used another {100 * services / window:.0f}% "
                    f"of a core ({1e6 * services / result['deliveries']:.1f} µs/delivery)"
                    + (f", Redis {100 * redis_s / window:.0f}%" if redis_s is not None else "")
                    + ", not counted in the server's figure."
                )
        lines += _storm_bounds(label, config.get("idle"))
        for workload, rooms in ACK_WORKLOADS:
            acks = config.get(workload) or {}
            rate = acks.get("acks_per_s")
            if not rate:
                continue
            senders = acks["senders"]
            fanout = (
                f"every send is also broadcast to the {senders} senders "
                f"({_fmt(acks.get('delivered_per_s'))} deliveries/s)"
                if workload == "acks"
                else "each sender alone in its room, so a send is one delivery"
            )
            lines.append(
                f"{label}, acks ({rooms}): {senders} closed loops keep {senders} sends in "
                f"flight, so (Little's law) mean ack latency = {senders} / acks per second = "
                f"{1000 * senders / rate:.1f} ms at the measured {rate:,.0f} acks/s (measured "
                f"mean {_fmt((acks.get('latency') or {}).get('mean_ms'), 1)} ms); an ack p99 "
                f"under {ACK_P99_TARGET_MS:g} ms needs more than "
                f"{1000 * senders / ACK_P99_TARGET_MS:,.0f} acks/s. Here {fanout}; server "
                f"{_fmt(_server_pct(acks))}%, generator {_fmt(_generator_pct(acks))}%"
                + (
                    " (**generator-bound**: the acks/s measure the generator, not the server)."
                    if generator_bound(acks)
                    else "."
                )
            )
    return lines


# The document -----------------------------------------------------------------------------


def existing_analysis(doc: Path) -> str | None:
    """The body of the Analysis section of an existing document, to carry over unchanged."""
    if not doc.exists():
        return None
    text = doc.read_text()
    match = re.search(
        rf"^{re.escape(ANALYSIS_HEADING)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.DOTALL | re.MULTILINE
    )
    return match.group(1).strip("\n") if match else None


def _table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    align = align or "l" + "r" * (len(header) - 1)
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


BROADCAST_HEADER = [
    "server",
    "N",
    "delivered msg/s",
    "p50 ms",
    "p99 ms",
    "server µs/delivery",
    "server CPU",
    "dropped",
    "generator CPU",
    "generator µs/delivery",
    "other CPU",
]


def _broadcast_row(label: str, n: str, r: dict[str, Any]) -> list[str]:
    return [
        label,
        f"{int(n):,}",
        _fmt(r["delivered_per_s"]),
        _fmt(_p(r, "p50"), 1),
        _fmt(_p(r, "p99"), 1),
        _fmt(r.get("server_us_per_delivery"), 1),
        f"{_fmt(_server_pct(r))}%",
        f"{r['dropped']:,}" + (f" (+{r['late']:,} late)" if r["late"] else ""),
        f"{_fmt(_generator_pct(r))}%",
        _fmt(r.get("generator_us_per_delivery"), 1),
        f"{_fmt(_other_pct(r))}%",
    ]


def _rounds_section(results: dict[str, Any]) -> list[str]:
    """The broadcast at N = 1,000 round by round, when the run measured it more than once."""
    rounds = {key: broadcast_rounds(config) for key, config in _configs(results) if _ok(config)}
    count = max((len(runs) for runs in rounds.values()), default=0)
    if count < 2:
        return []

    def each(runs: list[dict[str, Any]], value: Any) -> str:
        return " / ".join(value(r) + ("†" if _unfit(r) else "") for r in runs)

    rows = [
        [
            results["configs"][key]["label"],
            each(runs, lambda r: _fmt(r["delivered_per_s"])),
            each(runs, lambda r: _fmt(r.get("server_us_per_delivery"), 1)),
            each(runs, lambda r: _fmt(_p(r, "p99"), 1)),
        ]
        for key, runs in rounds.items()
        if runs
    ]
    return [
        f"### Broadcast at N = {int(TARGET_N):,}, round by round",
        "",
        f"After the whole run the broadcast at N = {int(TARGET_N):,} is measured again, each "
        f"server in turn, for {count} rounds in all (`--rounds`; the first round is the run "
        "in the table above). The Targets table pairs the runs of each round (those of the "
        "later rounds made a minute or two apart) and judges the median of the rounds' "
        "ratios: on a machine whose "
        "speed wanders by a fifth within minutes, one pair of runs can land a ratio on either "
        "side of its bound. † marks a run unfit to compare (generator-bound, or disturbed by "
        "other work); its rounds are left out of the median.",
        "",
        _table(
            ["server", "delivered msg/s", "server µs/delivery", "p99 ms"],
            rows,
            "lrrr",
        ),
        "",
    ]


def _cpus(cpus: int | list[int] | None) -> str:
    """'1' or '1-3' (results saved before the generator had several cores hold one int)."""
    if isinstance(cpus, list):
        return str(cpus[0]) if len(cpus) == 1 else f"{cpus[0]}-{cpus[-1]}"
    return str(cpus)


def _met(value: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured"}[value]


def _verdict(target: dict[str, Any]) -> str:
    """met, missed, not measured, or not judged (measured, but by an unfit run)."""
    return "not judged" if target.get("not_judged") else _met(target["met"])


def render(results: dict[str, Any], *, analysis: str, chart_name: str) -> str:
    env = results["environment"]
    opts = results["options"]
    # Runs saved before the C listeners have no listener_client: theirs were JavaScript.
    native_listeners = opts.get("listener_client", "raw") == "native"
    cores = results["cores"]
    py = env["python_packages"]
    npm = env["npm_packages"]
    pinned = cores["server"] is not None
    out: list[str] = []
    add = out.append

    add("# Performance")
    add("")
    add(
        f"Generated by `make bench` ({results['started']}, {results['seconds']:.0f} s for the "
        "whole run). Everything here except the Analysis section is rewritten by each run. "
        "Compare figures between configurations of the same run: on the 2-CPU virtual "
        "machine this harness was built on, the same code measured up to a third faster or "
        "slower from one run to the next when other work shared it, so repeat a run before "
        "trusting a smaller difference."
    )
    add("")
    add("```sh")
    add("make bench                                   # everything, about 8 minutes")
    add('make bench BENCH_ARGS="--configs memory,socketio,websockets --duration 5"')
    add(".venv/bin/python bench/run.py --quick        # a short smoke run; writes no doc")
    add(".venv/bin/python bench/run.py --configs memory,socketio,websockets --listeners 1000 \\")
    add("    --workloads broadcast --duration 5 --no-doc   # the fan-out comparison alone")
    add("```")
    add("")
    add(
        "`make bench` installs `requirements-bench.txt` (matplotlib, for the chart) and the "
        "Node packages of `bench/package-lock.json` (socket.io, socket.io-client, ws), then "
        "runs `bench/run.py`, which compiles the native listeners (`bench/listeners.c`) with "
        "`cc` into the run's temporary folder. The raw JSON of a run and every process's log "
        "are kept in that folder, whose path the run prints at the end. Configuration (b) "
        "needs Redis "
        "on 127.0.0.1:6379 (database 14 is flushed) and PostgreSQL on 127.0.0.1:5432 "
        "(databases `chatsite_bench` and `chatsite_bench_template` are created and dropped); "
        "without them it is skipped, with a note below."
    )
    add("")

    add("## Machine")
    add("")
    machine = [
        ["CPU", f"{env['cpus']} x {env['cpu_model']}"],
        ["memory", f"{_fmt(env['memory_gb'], 1)} GB"],
        ["kernel", f"Linux {env['kernel']}"],
        [
            "pinning",
            f"server on CPU {cores['server']}, load generator on CPU {_cpus(cores['generator'])}"
            f" ({cores.get('generator_procs', 1)} listener processes)"
            if pinned
            else "none (fewer than 2 CPUs)",
        ],
        ["Python", env["python"]],
        ["Django / channels / daphne", f"{py['Django']} / {py['channels']} / {py['daphne']}"],
        ["channels-redis / Twisted", f"{py['channels-redis']} / {py['Twisted']}"],
        # .get: results saved before uvicorn was measured do not name it.
        ["uvicorn / websockets", f"{py.get('uvicorn')} / {py.get('websockets')}"],
        ["Node.js", str(env["node"])],
        [
            "socket.io / socket.io-client / ws",
            f"{npm['socket.io']} / {npm['socket.io-client']} / {npm['ws']}",
        ],
    ]
    if env.get("redis"):
        machine.append(["Redis", env["redis"]])
    if env.get("postgresql"):
        machine.append(["PostgreSQL", env["postgresql"]])
    add(_table(["", ""], machine, "ll"))
    add("")

    add("## Method")
    add("")
    add(
        "- **One load generator for every server**: `bench/loadgen.js` (Node), speaking "
        "chatsite's protocol (docs/protocol.md) and Socket.IO's (WebSocket transport only). "
        "In the broadcast the sender runs in one process and the listeners are spread over "
        f"{cores.get('generator_procs', 1)} listener processes (`--generator-procs`; by "
        "default one per generator core and at least 2), each holding raw WebSocket clients: "
        "a TCP socket that parses the server's frames in place and finds the run's client_id "
        "with one buffer search, without a JSON parse, the same code for every server (the "
        "Socket.IO listeners do engine.io's handshake and pings by hand). "
        + (
            "The listener processes are `bench/listeners.c` (`--listener-client native`, "
            "compiled with `cc` by each run): one epoll loop per process and one `read` per "
            "ready socket, about 0.6 times the CPU per delivery of the same client in "
            "JavaScript (`--listener-client raw`), which set the pace of the bare servers' "
            "runs. "
            if native_listeners
            else "The listener processes run loadgen.js's client in JavaScript "
            "(`--listener-client raw`). "
        )
        + "The sender and the acks' senders use `ws` and `socket.io-client`. Every socket "
        "joins the room before anything is measured; "
        + (
            "the native listeners keep 100 handshakes in flight (one starts when another has "
            "joined), the JavaScript clients open theirs in batches of 100."
            if native_listeners
            else "the clients open theirs in batches of 100."
        )
    )
    add(
        "- **Servers under test**, each started fresh for every workload: (a) chatsite, one "
        "`daphne` process, in-memory channel layer, SQLite; (b) chatsite, one `daphne` "
        "process, channels-redis layer on local Redis, PostgreSQL; (c) the reference, "
        "`bench/socketio_server.js`: Socket.IO's chat example adapted to rooms (join a room; "
        "a message goes to every socket in its room, the sender's included, like chatsite; "
        "each message is stamped with an id, seq and time so its frame is about the size of "
        "chatsite's; an ack callback answers the sender); (d) chatsite as (a) but served by "
        "one `uvicorn` process with its `websockets` implementation, asyncio's loop and h11, "
        "where chatsite's patches of daphne and Twisted do not apply (`bench/servers.py` "
        "lists its options: frames up to 64 KiB, 64 frames queued per socket, no "
        "compression); (e) the floor for Python, `bench/websockets_server.py`: a bare "
        "`websockets` server that speaks chatsite's join, send, ack and message frames and "
        "sends each message, encoded once, to its room with `websockets.broadcast` (no "
        "sessions, no database, no channel layer); (f) chatsite as (b) but two `daphne` "
        "workers on one port, each with a listening socket of its own (SO_REUSEPORT, as "
        "`make serve`), each pinned to a core of its own where the machine has one beside "
        "the generator's, for the broadcast at N = 1,000 only. chatsite runs with "
        "`DJANGO_DEBUG=0` (and `CHAT_RATE_LIMIT=off`, for any send rate limit), each "
        "database a fresh copy of a migrated one, senders signed in with real session "
        "cookies, listeners anonymous."
    )
    add(
        "- **Pinning**: "
        + (
            f"the server process (and its threads) runs on CPU {cores['server']} only and the "
            f"generator's processes on CPU {_cpus(cores['generator'])} only "
            "(`sched_setaffinity`). Redis and PostgreSQL are not pinned: they share every CPU."
            if pinned
            else "none: this machine offered fewer than 2 CPUs, so the figures are unreliable."
        )
    )
    add(
        f"- **Broadcast** (N = {', '.join(f'{n:,}' for n in opts['listeners'])}): 1 sender "
        "and N listeners in one room, one message in flight: the sender sends the next "
        "message when every listener has the previous one. A delivery is one listener "
        "receiving one message; its latency is the arrival time minus the send time, both "
        "read in the generator. A listener without the message after 5 s counts as dropped "
        "and the loop moves on. *Delivered msg/s* = deliveries / window; the sender's own copy "
        f"is not counted. {opts['warmup_s']:g} s of warm-up (at least 3 messages), then a "
        f"window of {opts['duration_s']:g} s that starts at a send and ends when a message is "
        "complete."
        + (
            f" At N = {int(TARGET_N):,} it runs {opts['rounds']} times (`--rounds`): once with "
            "each server's other workloads, then again after the whole run, each server in "
            "turn; the targets judge the median of the rounds (*round by round* below)."
            if (opts.get("rounds") or 1) > 1
            else ""
        )
    )
    if opts.get("http"):
        add(
            "- **Broadcast over HTTP** (same N): the broadcast again with every client on HTTP, "
            "for (a) over chatsite's HTTP fallback and for (c) over Socket.IO's long-polling; "
            "refused POSTs, streams the server ended and Socket.IO disconnects are listed under "
            "*Problems seen in this run*."
        )
    add(
        "- **Server µs/delivery**: the server process's CPU time (user + system, "
        "`/proc/PID/stat`, all threads) over the window, divided by the deliveries in it. "
        "It includes everything the server does per message: for chatsite, storing it (SQLite "
        "runs inside the process; PostgreSQL and Redis work happens in their own processes "
        "and is not counted), the ack and the fan-out. *Server CPU* and *generator CPU* are "
        "shares of one core over the window; the generator's is the sum of its processes. "
        f"A run is **generator-bound** when the generator's processes together used "
        f"{SATURATED_PCT:g}% or more of the cores they may use, or one of them {SATURATED_PCT:g}% "
        "or more of its core: then the generator, not the server, set the pace, the run's "
        "msg/s and latencies measure the generator (they are not a floor for the server: a "
        "server that waits for a slow client also batches differently), and every ratio that "
        "involves the run is reported as not judged, as is one that involves a run other "
        f"work disturbed (other CPU above {DISTURBED_PCT:g}%). *Other CPU* is what every other "
        "process on the machine used meanwhile (`/proc/stat` minus the server, the "
        "generator and, for (b), Redis and PostgreSQL): it should be near 0%, and a run "
        "where it is not is listed under *Problems seen in this run*."
    )
    add(
        f"- **Acks**: {opts['senders']} signed-in senders, each in its own closed loop: send, "
        "wait for its own ack, send the next. Ack latency = ack arrival - send. Run twice: "
        "all senders in *one room* (every message is also broadcast to all the senders, as "
        "in a busy room), and each sender in *a room* of its own (the ack path alone). "
        "*Broadcasts missing*: over the whole run, every acked message times the sockets of "
        "its room, minus the broadcasts that arrived (after waiting up to 3 s for stragglers)."
    )
    add(
        f"- **Idle memory**: after 20 sockets connect, join and leave (so lazily built state "
        f"is in the baseline), the server's `VmRSS` is read; then {opts['idle_sockets']:,} "
        "sockets connect and join the room, and 2 s later `VmRSS` is read again. KB per idle "
        "socket = the difference / sockets. The same sockets are the *handshake storm*: "
        "*connect s* is the time from the first connect to the last `joined`, opened by the "
        "broadcast listeners' client, *connect CPU s* the server CPU spent meanwhile, and "
        "*generator CPU* is the generator's share of a core meanwhile; at 90% or more the "
        "generator set the pace and the storm is not judged. "
        "Then every socket closes at once, as when a network blip drops every tab: *close s* "
        "is the time until the server is quiet again (its first half second under 5% of a "
        "core), and *close CPU s* the server CPU spent meanwhile."
    )
    add("")

    add("## Results")
    add("")
    add("### Broadcast: 1 sender, N listeners in one room")
    add("")
    rows = [
        _broadcast_row(config["label"], n, r)
        for _key, config in _configs(results)
        if _ok(config)
        for n, r in config["broadcast"].items()
    ]
    add(_table(BROADCAST_HEADER, rows))
    add("")
    add(
        f"{REFERENCE_FIGURES} *Generator µs/delivery* is the generator's own CPU per delivery: "
        "its ceiling is about 1,000,000 / that figure deliveries per second."
    )
    add("")
    add(f"![Delivered msg/s, p99 latency, server µs/delivery and ack latency]({chart_name})")
    add("")
    out.extend(_rounds_section(results))

    http_rows = [
        _broadcast_row(config["http_label"], n, r)
        for _key, config in _configs(results)
        if _ok(config)
        for n, r in _http_runs(config)
    ]
    if http_rows:
        add("### Broadcast over HTTP: chatsite's fallback vs Socket.IO long-polling")
        add("")
        add(
            "The same broadcast with every client, the sender included, on HTTP instead of a "
            "WebSocket: for chatsite its fallback (each client reads one `text/event-stream` "
            "response and POSTs its frames, numbered, one POST in flight; docs/protocol.md), "
            'for Socket.IO `socket.io-client` with `transports: ["polling"]`. Both share one '
            "keep-alive `http.Agent` in the generator (engine.io's default in Node would open a "
            "connection per poll). The goal of issue 12: at least Socket.IO's long-polling "
            "msg/s, and a p99 within 2x of its p99 (see Targets)."
        )
        add("")
        add(_table(BROADCAST_HEADER, http_rows))
        add("")

    add("### Acks: concurrent senders")
    add("")
    rows = []
    for _key, config in _configs(results):
        if not _ok(config):
            continue
        for workload, rooms in ACK_WORKLOADS:
            r = config.get(workload)
            if not r:
                continue
            rows.append(
                [
                    config["label"],
                    f"{r['senders']:,}, {rooms}",
                    _fmt(r["acks_per_s"]),
                    _fmt(_p(r, "p50"), 1),
                    _fmt(_p(r, "p99"), 1),
                    f"{r['ack_timeouts']:,}",
                    _missing_text(r),
                    f"{_fmt(_server_pct(r))}%",
                    f"{_fmt(_generator_pct(r))}%",
                    f"{_fmt(_other_pct(r))}%",
                ]
            )
    add(
        _table(
            [
                "server",
                "senders",
                "acks/s",
                "ack p50 ms",
                "ack p99 ms",
                "no ack in 5 s",
                "broadcasts missing",
                "server CPU",
                "generator CPU",
                "other CPU",
            ],
            rows,
        )
    )
    add("")

    add("### Memory: idle sockets")
    add("")
    rows = []
    for _key, config in _configs(results):
        if not _ok(config) or "idle" not in config:
            continue
        r = config["idle"]
        rows.append(
            [
                config["label"],
                f"{r['sockets']:,}",
                f"{r['rss_before_kb'] / 1024:,.1f}",
                f"{r['rss_after_kb'] / 1024:,.1f}",
                _fmt(r.get("kb_per_socket"), 1),
                _fmt(r["connect"]["seconds"], 1),
                _fmt(r.get("connect_cpu_s"), 1),
                "n/a" if r.get("generator_cpu_pct") is None else f"{r['generator_cpu_pct']:.0f}%",
                _fmt(r.get("close_s"), 1),
                _fmt(r.get("close_cpu_s"), 1),
            ]
        )
    add(
        _table(
            [
                "server",
                "sockets",
                "RSS before MB",
                "RSS after MB",
                "KB per socket",
                "connect s",
                "connect CPU s",
                "generator CPU",
                "close s",
                "close CPU s",
            ],
            rows,
        )
    )
    add("")

    add(f"### Targets (N = {int(TARGET_N):,}; ratios to the reference servers of this run)")
    add("")
    rows = [
        [results["configs"][t["config"]]["label"], t["target"], t["value"] or "n/a", _verdict(t)]
        for t in targets(results)
    ]
    add(_table(["server", "target", "measured", ""], rows, "lllc"))
    add("")
    bound = [
        config["label"]
        for _key, config in _configs(results)
        if _ok(config) and generator_bound(config["broadcast"].get(TARGET_N))
    ]
    if bound:
        add(
            f"**Generator-bound at N = {int(TARGET_N):,}: {'; '.join(bound)}.** The generator, "
            "not the server, set the pace of those runs, so their msg/s and latencies measure "
            "the generator, and every ratio that involves them is left unjudged rather than "
            "read as a floor. Re-run with more generator processes or cores."
        )
        add("")

    add("### What bounds each figure")
    add("")
    add(
        "Read from the CPU each side used in the window (a process at "
        f"{SATURATED_PCT:g}% or more of its core is taken as the bottleneck):"
    )
    add("")
    out.extend(f"- {line}" for line in bounds(results))
    add("")
    notes = run_notes(results)
    if notes:
        add("### Problems seen in this run")
        add("")
        out.extend(f"- {line}" for line in notes)
        add("")

    add(ANALYSIS_HEADING)
    add("")
    add(analysis)
    add("")
    return "\n".join(out)


def run_notes(results: dict[str, Any]) -> list[str]:
    """Everything that makes a figure less trustworthy: skips, failures, errors, a busy box."""
    notes = [f"**A round failed**: {error[:300]}." for error in results.get("round_errors", [])]
    for _key, config in _configs(results):
        label = config["label"]
        if config.get("skipped"):
            notes.append(f"{label}: **skipped**: {config['skipped']}.")
        if config.get("failed"):
            notes.append(f"{label}: **failed**: `{config['failed'][:300]}`.")
        if not _ok(config):
            continue
        for name, r in _runs(config):
            failures = _connect_failures(r)
            if failures:
                samples = "; ".join(_connect_samples(r))
                sockets = "socket" if failures == 1 else "sockets"
                notes.append(
                    f"{label} ({name}): {failures:,} {sockets} failed to join ({samples})."
                )
            for problem in _transport_problems(r):
                notes.append(f"{label} ({name}): {problem}.")
            if r.get("server_errors"):
                notes.append(
                    f"{label} ({name}): {r['server_errors']:,} error frames, e.g. "
                    f"`{r['error_samples'][0]}`."
                )
            if _missing(r):
                notes.append(
                    f"**{label} ({name}): {_missing_text(r)} broadcasts never reached a socket "
                    "of their room** (counted over the whole run, after waiting for "
                    "stragglers). The server skipped that fan-out work, so this run's acks/s "
                    "and ack latency are not comparable with a server that delivers everything."
                )
            if r.get("ack_timeouts"):
                notes.append(f"{label} ({name}): {r['ack_timeouts']:,} sends got no ack in 5 s.")
            server_log = r.get("server_log") or {}
            if server_log.get("tracebacks"):
                notes.append(
                    f"{label} ({name}): the server logged {server_log['tracebacks']} "
                    f"traceback(s), e.g. `{server_log['first']}`."
                )
            if r.get("server_alive") is False:
                notes.append(f"{label} ({name}): the server died during the run.")
            other = _other_pct(r)
            if other is not None and other > DISTURBED_PCT:
                notes.append(
                    f"{label} ({name}): other processes used {other:.0f}% of a core during the "
                    "window: the figures of this run are disturbed."
                )
    return notes


def _connect_samples(result: dict[str, Any]) -> list[str]:
    connect = result.get("connect") or {}
    parts = [connect] if "failures" in connect else list(connect.values())
    return sorted({s for part in parts for s in part.get("failure_samples", [])})[:3]


def _connect_failures(result: dict[str, Any]) -> int:
    connect = result.get("connect") or {}
    if "failures" in connect:
        return connect["failures"]
    return sum(part.get("failures", 0) for part in connect.values())


# The chart --------------------------------------------------------------------------------


def draw_chart(results: dict[str, Any], path: Path) -> None:
    """Four panels: delivered msg/s, p99 latency, server µs/delivery, ack latency. A hatched
    bar is a run whose load generator was saturated: the server could have done more."""
    # Imported here: matplotlib is slow to import and only the document needs it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    configs = [(k, c) for k, c in _configs(results) if _ok(c)]
    colors = {
        "memory": "#3b6fb6",
        "redis": "#7aa6db",
        "uvicorn": "#5aa469",
        "socketio": "#e08a2c",
        "websockets": "#9b59b6",
    }
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.8), dpi=110)
    width = 0.8 / max(len(configs), 1)
    Run = tuple[dict[str, Any] | None, str]  # the run behind a bar, and its metric

    def bars(ax: Any, run_for: Any, groups: list[str], title: str, unit: str) -> None:
        top = 0.0
        for i, (key, config) in enumerate(configs):
            runs: list[Run] = [run_for(config, g) for g in groups]
            values = [_metric(r, metric) if r else None for r, metric in runs]
            xs = [g + (i - (len(configs) - 1) / 2) * width for g in range(len(groups))]
            heights = [v or 0 for v in values]
            top = max([top, *heights])
            rects = ax.bar(xs, heights, width * 0.95, label=config["label"], color=colors.get(key))
            labels = [_short(v) for v in values]
            for j, (rect, (r, _metric_name)) in enumerate(zip(rects, runs, strict=True)):
                if r and generator_bound(r):
                    rect.set_hatch("///")
                    rect.set_edgecolor("white")
                if r and _missing(r):
                    rect.set_edgecolor(DROPS_COLOR)
                    rect.set_linewidth(1.5)
                    labels[j] += "!"
            ax.bar_label(rects, labels=labels, fontsize=7, padding=2)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(unit, fontsize=9)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, fontsize=9)
        ax.set_ylim(0, top * 1.18 or 1)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.tick_params(axis="y", labelsize=8)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:,.0f}"))

    n_groups = [f"N = {n:,}" for n in results["options"]["listeners"]]

    def broadcast(metric: str) -> Any:
        def run_for(config: dict[str, Any], group: str) -> Run:
            n = group.removeprefix("N = ").replace(",", "")
            return config["broadcast"].get(n), metric

        return run_for

    def ack(config: dict[str, Any], group: str) -> Run:
        pct, rooms = group.split("\n")
        workload = next(w for w, r in ACK_WORKLOADS if r == rooms)
        return config.get(workload), pct

    bars(axes[0][0], broadcast("delivered_per_s"), n_groups, "Broadcast: delivered msg/s", "msg/s")
    bars(axes[0][1], broadcast("p99"), n_groups, "Broadcast: p99 latency (lower is better)", "ms")
    bars(
        axes[1][0],
        broadcast("server_us_per_delivery"),
        n_groups,
        "Server CPU µs per delivery (lower is better)",
        "µs",
    )
    senders = results["options"]["senders"]
    ack_axes = axes[1][1]
    bars(
        ack_axes,
        ack,
        [f"{pct}\n{rooms}" for _w, rooms in ACK_WORKLOADS for pct in ("p50", "p99")],
        f"Ack latency, {senders} concurrent senders (lower is better)",
        "ms",
    )
    target = ack_axes.axhline(ACK_P99_TARGET_MS, color="#c33", lw=1, ls="--")
    ack_axes.legend(
        [target], [f"target: p99 < {ACK_P99_TARGET_MS:g} ms"], fontsize=8, loc="upper right"
    )
    handles = [Patch(facecolor=colors.get(key), label=c["label"]) for key, c in configs]
    handles.append(Patch(facecolor="#777", hatch="///", edgecolor="white", label="generator-bound"))
    handles.append(
        Patch(facecolor="white", edgecolor=DROPS_COLOR, lw=1.5, label="! broadcasts dropped")
    )
    labels = [h.get_label() for h in handles]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=9, frameon=False)
    fig.suptitle(
        f"chatsite vs Socket.IO and bare websockets: server on one core, generator on the rest "
        f"({results['started']})",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0.07, 1, 0.96))
    fig.savefig(path)
    plt.close(fig)


def _short(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}"


# Entry points -----------------------------------------------------------------------------


def write(results: dict[str, Any], *, doc: Path, chart: Path) -> None:
    """Write the document and its chart, keeping an existing Analysis section."""
    analysis = existing_analysis(doc) or ANALYSIS_PLACEHOLDER
    draw_chart(results, chart)
    doc.write_text(render(results, analysis=analysis, chart_name=chart.name))


def summary(results: dict[str, Any]) -> str:
    """The run's figures as plain text, for the console."""
    lines = []
    for _key, config in _configs(results):
        if not _ok(config):
            lines.append(f"{config['label']}: {config.get('skipped') or config.get('failed')}")
            continue
        lines.append(config["label"])
        for n, r in config["broadcast"].items():
            lines.append(f"  broadcast N={int(n):>5,}: {one_line(r)}")
        for n, r in _http_runs(config):
            lines.append(f"  over HTTP N={int(n):>5,}: {one_line(r)}")
        for workload, rooms in ACK_WORKLOADS:
            if workload in config:
                lines.append(f"  acks ({rooms}): {one_line(config[workload])}")
        if "idle" in config:
            lines.append(f"  idle: {one_line(config['idle'])}")
    lines.extend(f"note: {note}" for note in run_notes(results))
    lines.extend(
        f"target [{_verdict(t)}] {results['configs'][t['config']]['label']}: "
        f"{t['target']}: {t['value']}"
        for t in targets(results)
    )
    return "\n".join(lines)


if __name__ == "__main__":
    # Re-render the doc from a saved results.json: python bench/report.py RESULTS [DOC]
    saved = json.loads(Path(sys.argv[1]).read_text())
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else Path("docs/performance.md")
    write(saved, doc=target, chart=target.with_suffix(".png"))
