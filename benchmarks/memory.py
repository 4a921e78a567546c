"""Peak memory of one step of a process, from the kernel's own accounting (Linux).

Before the step the peak-RSS mark (``VmHWM``) is reset by writing ``5`` to
``/proc/self/clear_refs``; after it, the peak is read back. The figure reported is that peak
minus the resident size just before the step: what the step added at its worst, including
memory it freed again before it ended. Where the reset is refused, ``ru_maxrss`` is used
instead, which can only under-count when an earlier peak was higher (the method is reported).

Standard library only: Microsoft's client runs it in its own virtualenv.
"""

from __future__ import annotations

import gc
import resource
from types import TracebackType


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """``with PeakMemory() as mem: step()`` then ``mem.extra_bytes`` and ``mem.method``."""

    def __init__(self) -> None:
        self.before_kib = 0
        self.peak_kib = 0
        self.method = ""

    def __enter__(self) -> PeakMemory:
        gc.collect()
        rss = _status_kib("VmRSS")
        if rss is not None and _reset_peak():
            self.method = "VmHWM after clear_refs, minus VmRSS before"
            self.before_kib = rss
        else:
            self.method = "ru_maxrss after, minus ru_maxrss before"
            self.before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        peak = _status_kib("VmHWM") if self.method.startswith("VmHWM") else None
        if peak is None:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        self.peak_kib = peak

    @property
    def extra_bytes(self) -> int:
        """Peak resident memory during the step above the resident memory before it."""
        return max(0, self.peak_kib - self.before_kib) * 1024
