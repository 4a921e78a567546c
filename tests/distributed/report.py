"""Per-scenario figures of the distributed suite, printed at the end of the session.

Each scenario records its wall time, the batches the reference server holds for it against the
batches its runs planned, and the rows written to shared storage against the rows expected.
The conftest prints one line per scenario in pytest's terminal summary (no ``-s`` needed) and
writes them as JSON next to the deployment's logs.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ScenarioReport:
    """What one scenario measured."""

    name: str
    seconds: float = 0.0
    batches_on_server: int = 0
    batches_planned: int = 0
    rows_written: int = 0
    rows_expected: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One summary line."""
        text = (
            f"{self.name}: {self.seconds:.1f} s, batches on server {self.batches_on_server}"
            f" / planned {self.batches_planned}, rows written {self.rows_written}"
            f" / expected {self.rows_expected}"
        )
        return f"{text}; {'; '.join(self.notes)}" if self.notes else text


REPORTS: list[ScenarioReport] = []


@contextmanager
def scenario(name: str) -> Iterator[ScenarioReport]:
    """Time a scenario; its report is kept (with the time so far) even when it fails."""
    report = ScenarioReport(name)
    REPORTS.append(report)
    started = time.monotonic()
    try:
        yield report
    finally:
        report.seconds = time.monotonic() - started


def write_json(path: Path) -> None:
    """Every report so far, as a JSON list."""
    path.write_text(json.dumps([dataclasses.asdict(r) for r in REPORTS], indent=2) + "\n")
