"""What every benchmark script shares: the command line, the report, the machine, the statistics.

Each script (``emulator_bench``, ``session_bench``, ``runner_bench``) measures
its own things; this module gives them one shape: the same options (``--quick``,
``--only``, ``--runs``, ``--out``, ``--check``), a report that records the
machine, the commit and how busy the machine was, the same table and goal
lines, results written only for a full run, and child processes stopped on
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import platform
import re
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

Report = dict[str, Any]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return round(statistics.median(values), 3) if values else float("nan")


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), math.ceil(q / 100 * len(sorted_values))))
    return sorted_values[rank - 1]


# -- the machine -----------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=5
    ).stdout.strip()


def machine_info() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError):
        m = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        cpu = m.group(1).strip() if m else ""
    mem_kb = 0
    with contextlib.suppress(OSError):
        m = re.search(r"^MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text(), re.M)
        mem_kb = int(m.group(1)) if m else 0
    commit, emulator_changed = "", None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = _git("rev-parse", "--short", "HEAD")
        emulator_changed = bool(_git("status", "--porcelain", "--", "emdash_fb/emulator"))
    aiohttp_version = ""
    with contextlib.suppress(Exception):
        from importlib.metadata import version

        aiohttp_version = version("aiohttp")
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "memory_mb": mem_kb // 1024,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "aiohttp": aiohttp_version,
        "git_commit": commit,
        "emulator_has_uncommitted_changes": emulator_changed,
    }


class CpuMeter:
    """CPU used by other processes on the machine while we measure (they skew every figure).

    Machine-wide busy time from /proc/stat minus what this process and its
    reaped children (emulators, listener worker) used, per second of wall time.
    """

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # not idle/iowait
        own = 0.0
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
            usage = resource.getrusage(who)
            own += usage.ru_utime + usage.ru_stime
        return time.monotonic(), busy, own

    def other_cpus(self) -> float:
        """Average number of CPUs kept busy by other processes since ``start``."""
        (t0, busy0, own0), (t1, busy1, own1) = self.start, self._sample()
        return round(max(0.0, (busy1 - busy0) - (own1 - own0)) / max(1e-9, t1 - t0), 2)


# -- the command line ------------------------------------------------------------


def bench_parser(
    description: str | None, sections: Sequence[str], default_out: Path
) -> argparse.ArgumentParser:
    """The options every benchmark takes; a script adds its own to the parser."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="one short run of each (~30 s)")
    p.add_argument(
        "--only",
        choices=tuple(sections),
        action="append",
        help="run only these measurements (repeatable)",
    )
    p.add_argument("--runs", type=int, help="repetitions of each measurement")
    p.add_argument(
        "--out",
        type=Path,
        help=f"results file (default: {default_out.relative_to(REPO)} for a full run of all "
        "measurements; --quick and --only only print unless --out is given)",
    )
    p.add_argument("--check", action="store_true", help="exit 1 when a goal is missed")
    return p


def plan(
    args: argparse.Namespace,
    settings_cls: Any,
    sections: Sequence[str],
    default_out: Path,
    *,
    narrowed: bool = False,
) -> tuple[Any, set[str], Path | None]:
    """Settings, the measurements to run, and the results file (a full, default run only)."""
    s = settings_cls.quick() if args.quick else settings_cls()
    if args.runs is not None:
        s.runs = max(1, min(args.runs, 20))
    only = set(args.only or sections)
    out: Path | None = args.out
    if out is None and not args.quick and only == set(sections) and not narrowed:
        out = default_out
    return s, only, out


def run_sections(
    report: Report,
    only: set[str],
    sections: Sequence[tuple[str, str, Callable[..., Any]]],
    *args: Any,
) -> None:
    """``report[key] = fn(*args)`` for each chosen ``(name, key, fn)``, timed."""
    for name, key, fn in sections:
        if name in only:
            t = time.monotonic()
            report[key] = fn(*args)
            log(f"({name}: {time.monotonic() - t:.1f} s)")


# -- the report ------------------------------------------------------------------


def start_report(
    benchmark: str, quick: bool, settings: Any, layout: str
) -> tuple[Report, CpuMeter]:
    machine = machine_info()
    # What was measured, if not exactly the commit: uncommitted product changes.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        status = _git("status", "--porcelain", "--", "emdash_fb", "rules")
        machine["product_uncommitted_changes"] = [ln[3:] for ln in status.splitlines()]
    report: Report = {
        "benchmark": benchmark,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full",
        "machine": machine,
        "layout": layout,
        "settings": asdict(settings),
    }
    log(f"{benchmark} benchmark ({report['mode']}, {settings.runs} run(s) each)")
    log(f"layout: {layout}")
    meter = CpuMeter()
    time.sleep(1.0)
    busy = meter.other_cpus()
    report["background"] = {"other_cpus_before_start": busy}
    if busy > 0.2:
        log(f"warning: {busy:.2f} CPUs already busy with other work; figures will be skewed")
    return report, CpuMeter()


def finish_report(
    report: Report,
    meter: CpuMeter,
    started: float,
    goals_fn: Callable[[Report], list[dict[str, Any]]],
    table_fn: Callable[[Report], None],
    out_path: Path | None,
) -> bool:
    """Print the report, write it to ``out_path`` if given; True when every goal passed."""
    report["seconds"] = round(time.monotonic() - started, 1)
    report["background"]["other_cpus_during_run"] = meter.other_cpus()
    report["background"]["loadavg_1min"] = round(os.getloadavg()[0], 2)
    report["goals"] = goals_fn(report)
    machine = report["machine"]
    runs = report["settings"]["runs"]
    print(
        f"\n{report['benchmark']} benchmark, {report['date']} ({report['mode']}, medians of "
        f"{runs} run(s), {report['seconds']} s)"
    )
    dirty = machine.get("product_uncommitted_changes")
    print(
        f"machine: {machine['nproc']} CPUs ({machine['cpu']}), Python {machine['python']}, "
        f"aiohttp {machine['aiohttp']}, commit {machine['git_commit']}"
        + (f" plus uncommitted changes to {', '.join(dirty)}" if dirty else "")
    )
    print(f"layout: {report['layout']}")
    bg = report["background"]
    print(
        f"other processes on the machine: {bg['other_cpus_before_start']:.2f} CPUs busy before "
        f"start, {bg['other_cpus_during_run']:.2f} on average during the run (this benchmark's "
        "own children excluded only once reaped)"
    )
    table_fn(report)
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=2) + "\n")
        print(f"results written to {out_path}")
    return all(g["pass"] for g in report["goals"])


def print_rows(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print()
    print(line(header))
    print(line(tuple("-" * w for w in widths)))
    for r in rows:
        print(line(r))
    print()


def print_goals(goals: list[dict[str, Any]]) -> None:
    for g in goals:
        mark = "PASS" if g["pass"] else "FAIL"
        print(f"  {mark}  {g['name']}: {g['value']} (goal {g['goal']})")
    print()


# -- signals ---------------------------------------------------------------------


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that the cleanup in main() runs."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def handle_signals() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_main(fn: Callable[[], int]) -> None:
    """Run a benchmark's main; Ctrl-C and SIGTERM stop its children and exit 130 / 143."""
    with handle_signals():
        try:
            code = fn()
        except KeyboardInterrupt:
            log("interrupted; child processes stopped")
            code = 130
        except Terminated:
            log("terminated; child processes stopped")
            code = 143
    sys.exit(code)
