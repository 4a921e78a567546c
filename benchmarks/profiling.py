"""cProfile summaries for the CPU benchmarks: top entries, and self time grouped by what it does.

The profiler counts the CPU time of the thread it runs in (:func:`new_profiler`:
``time.thread_time``), not wall time, so waiting in ``epoll`` costs nothing and work that other
threads do (an executor's) is not in it: compare the total with the thread's and the process's
CPU measured beside it. The groups are decided by the file (and for built-ins the name) of each
function in the profile, so that the summary reads as "request building, header handling,
token checks, body handling, path work, bookkeeping" rather than as a list of a hundred
functions. Times under a profiler are inflated (each Python call costs more, and reading the
thread's CPU clock costs a system call), so shares are more telling than totals.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import re
import time
from typing import Any

_STDLIB = re.compile(r"/lib/python3\.\d+/")

#: ``(group, substrings)``: a function belongs to the first group one of whose substrings occurs
#: in ``"<file>:<function>"`` (built-ins have ``~`` as file). Order matters.
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "thread hand-off (run_in_executor, to_thread: aiohttp's trust_env lookups)",
        (
            "concurrent/futures/",
            "/threading.py",
            "asyncio/threads.py",
            "~:<method 'put' of '_queue.SimpleQueue'",
            "~:<method 'acquire' of '_thread",
            "~:<method 'release' of '_thread",
            "~:<method '__exit__' of '_thread",
            "~:<method '__enter__' of '_thread",
            "asyncio/futures.py",
        ),
    ),
    ("provider: token checks, auth flow", ("hooks/tokens.py", "api/auth_flow.py", "masking.py")),
    (
        "provider: request building",
        ("api/calls.py", "api/exchange.py", "api/identifiers.py", "deadlines.py"),
    ),
    ("provider: header handling", ("api/headers.py",)),
    (
        "provider: body handling, limits",
        ("api/limits.py", "api/body.py", "api/parsers.py", "api/models.py", "api/progress"),
    ),
    (
        "provider: retry, resume, session turns (bookkeeping)",
        (
            "hooks/retry.py",
            "api/resume.py",
            "hooks/download.py",
            "hooks/flow.py",
            "async_sessions.py",
            "hooks/settings.py",
            "compat.py",
        ),
    ),
    (
        "provider: transport (aiohttp glue)",
        ("hooks/transport_async.py", "hooks/transport_errors.py"),
    ),
    ("provider: hook calls", ("hooks/mrsdeploy.py", "hooks/endpoints.py")),
    (
        "provider: landing (plan, paths, write, checksum, progress)",
        ("airflow_provider/outputs", "airflow_provider/operators"),
    ),
    (
        "provider: trigger, progress",
        ("airflow_provider/triggers", "airflow_provider/progress", "airflow_provider/batch_set"),
    ),
    ("provider: other", ("airflow_provider/",)),
    ("path work (pathlib, os.path)", ("pathlib.py", "posixpath.py", "genericpath.py")),
    (
        "file system calls (open, write, mkdir, rename, stat)",
        (
            "~:<built-in method io.open>",
            "~:<method 'write' of '_io",
            "~:<method 'close' of '_io",
            "~:<built-in method posix.",
            "~:<built-in method _io.open>",
        ),
    ),
    ("hashing", ("~:<method 'update' of '_hashlib", "hashlib")),
    ("logging", ("logging/", "structlog")),
    ("aiohttp: request building and sending", ("aiohttp/client.py", "aiohttp/client_reqrep.py")),
    (
        "aiohttp: response parsing and reading",
        ("aiohttp/client_proto.py", "aiohttp/http_parser", "aiohttp/streams.py", "_http_parser"),
    ),
    ("aiohttp: connection pool", ("aiohttp/connector.py",)),
    ("aiohttp: other (helpers, timeouts, cookies)", ("aiohttp/",)),
    ("URLs and multidicts (yarl, multidict)", ("yarl/", "multidict/")),
    (
        "socket system calls",
        (
            "~:<method 'send' of '_socket",
            "~:<method 'recv' of '_socket",
            "~:<method 'recv_into' of '_socket",
            "~:<method 'poll' of 'select.epoll'",
            "socket.py",
            "selectors.py",
        ),
    ),
    ("event loop (asyncio)", ("asyncio/", "~:<method 'run' of '_contextvars.Context'")),
    (
        "built-ins called from Python (isinstance, hasattr, len, getattr...)",
        ("~:<built-in method builtins.",),
    ),
    ("json", ("json/", "~:<built-in method _json", "msgspec")),
)


def new_profiler() -> cProfile.Profile:
    """A profiler counting the CPU time of its thread."""
    return cProfile.Profile(time.thread_time)


def group_of(file: str, function: str) -> str:
    """The group of a profile entry (see :data:`GROUPS`)."""
    key = f"{file}:{function}"
    for name, needles in GROUPS:
        if any(needle in key for needle in needles):
            return name
    return "other"


def summarize(profiler: cProfile.Profile, per: int, unit: str, top: int = 25) -> list[str]:
    """Lines describing a profile: self time per group, then the top entries by self time and
    the top provider entries by cumulative time; times shown in µs per ``unit`` (``per`` of
    them were done)."""
    stats = pstats.Stats(profiler)
    entries: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(values[2] for values in entries.values()) or 1e-9
    groups: dict[str, float] = {}
    rows = []
    for (file, line, function), (_cc, calls, tottime, cumtime, _callers) in entries.items():
        name = group_of(file, function)
        groups[name] = groups.get(name, 0.0) + tottime
        rows.append((tottime, cumtime, calls, _short(file, line, function), name))
    lines = [
        f"profiled CPU of the loop's thread {total:.2f} s over {per:,} {unit}s = "
        f"{total / per * 1e6:.0f} µs per {unit} (inflated by the profiler: the shares count)",
        f"self time by group (µs per {unit}, share):",
    ]
    for name, seconds in sorted(groups.items(), key=lambda item: -item[1]):
        lines.append(f"  {seconds / per * 1e6:8.1f} µs {seconds / total:6.1%}  {name}")
    others = sorted((row for row in rows if row[4] == "other"), reverse=True)
    lines.append(f"largest entries of 'other' (µs per {unit}, calls per {unit}):")
    for tottime, _cum, calls, where, _group in others[:8]:
        lines.append(f"  {tottime / per * 1e6:8.1f} µs {calls / per:6.1f}  {where}")
    lines.append(f"top {top} entries by self time (µs per {unit}, calls per {unit}):")
    for tottime, _cum, calls, where, _group in sorted(rows, reverse=True)[:top]:
        lines.append(f"  {tottime / per * 1e6:8.1f} µs {calls / per:6.1f}  {where}")
    provider = [row for row in rows if "airflow_provider" in row[3]]
    lines.append(
        f"top {top} provider entries by cumulative time (µs per {unit}, calls per {unit}):"
    )
    for _tot, cumtime, calls, where, _group in sorted(provider, key=lambda row: -row[1])[:top]:
        lines.append(f"  {cumtime / per * 1e6:8.1f} µs {calls / per:6.1f}  {where}")
    return lines


def _short(file: str, line: int, function: str) -> str:
    if file == "~":
        return function
    if "site-packages/" in file:
        file = file.split("site-packages/", 1)[1]
    elif _STDLIB.search(file):
        file = _STDLIB.split(file, maxsplit=1)[1]
    elif "airflow_provider/" in file:
        file = "airflow_provider/" + file.split("airflow_provider/", 1)[1]
    return f"{file}:{line}({function})"


def dump(profiler: cProfile.Profile) -> str:
    """The plain pstats listing (self time order), for a file next to the figures."""
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(60)
    return out.getvalue()
