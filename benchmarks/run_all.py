"""Run every benchmark in turn (``make bench``); ``--quick`` passes smaller sizes to each.

Each script prints its figures and ``RATIO <name> <value>`` lines; this runner prints the
machine first and a summary of every RATIO line at the end. It exits non-zero when a script
fails, after running the others.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = (
    "bench_submit",
    "bench_collect",
    "bench_cpu",
    "bench_wait",
    "bench_large_batch",
    "bench_object_store",
    "bench_e2e",
)


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    sys.path.insert(0, str(REPO))
    from benchmarks.common import env_with_repo, machine, versions

    info = machine()
    print(
        f"machine: {info['nproc']} cores ({info['cpu']}), {info['memory']}, "
        f"Python {info['python']}, {info['platform']}",
        flush=True,
    )
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()), flush=True)
    ratios: list[str] = []
    failed: list[str] = []
    for script in SCRIPTS:
        print(f"\n== {script}{' (quick)' if quick else ''}", flush=True)
        started = time.perf_counter()
        command = [sys.executable, "-m", f"benchmarks.{script}", *(["--quick"] if quick else [])]
        process = subprocess.Popen(
            command, cwd=REPO, env=env_with_repo(), stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="", flush=True)
            if line.startswith("RATIO "):
                ratios.append(line.strip())
        if process.wait() != 0:
            failed.append(script)
        print(f"({script} took {time.perf_counter() - started:.0f} s)", flush=True)
    print("\n== summary", flush=True)
    for line in ratios:
        print(line, flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
