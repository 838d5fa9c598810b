"""Benchmark RTDB stream readers on a large initial snapshot: pyrebase4's ``stream()`` vs ours.

A listener's first event is the whole snapshot of its location. pyrebase4's
SSE client reads the response one character at a time and re-scans its whole
buffer for an event boundary after every character, so that first event costs
time quadratic in its size. This script measures, for each reader, the time
from opening the stream to having the first event parsed into Python objects:

- **pyrebase4** ``Database.stream()``, unchanged, at sizes it can finish
  (16, 32, 64 KB by default), and one attempt at 1 MB with a time cap
  (default 60 s); the 1 MB figure is extrapolated quadratically from the
  largest size measured when the cap is hit;
- **ours**, ``emdash_fb.firebase.sse.open_stream`` (aiohttp, line-based), at
  1 MB and 4 MB.

The server is the bundled emulator on a thread of this process; every reader
run is its own subprocess (a stuck pyrebase4 thread can be killed at the cap),
timed inside the child after its imports. Medians of ``--runs`` runs (5 by
default) are printed and written to ``benchmarks/results/stream_reader.json``.

    .venv/bin/python benchmarks/stream_reader_bench.py            # ~2 min
    .venv/bin/python benchmarks/stream_reader_bench.py --quick    # ~20 s
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

DEFAULT_OUT = REPO / "benchmarks" / "results" / "stream_reader.json"
KB = 1024
MB = 1024 * KB
ENTRY_BYTES = 100  # each child of the snapshot is about this big as JSON


def snapshot(size: int) -> dict[str, str]:
    """A JSON object of about ``size`` bytes: ~100-byte string children."""
    n = max(1, size // ENTRY_BYTES)
    pad = ENTRY_BYTES - len('"k0000000":"",')
    return {f"k{i:07d}": "x" * pad for i in range(n)}


# -- child processes: one reader, one run ---------------------------------------------


def child_pyrebase(url: str, path: str) -> float:
    import threading

    import pyrebase

    app = pyrebase.initialize_app(
        {"apiKey": "k", "authDomain": "", "databaseURL": url, "storageBucket": ""}
    )
    got = threading.Event()
    size: list[int] = []

    def handler(message: dict[str, Any]) -> None:
        size.append(len(message["data"]))
        got.set()

    start = time.perf_counter()
    app.database().child(path).stream(handler)
    got.wait()
    elapsed = time.perf_counter() - start
    assert size and size[0] > 0
    return elapsed


def child_ours(url: str, path: str) -> float:
    import asyncio

    from emdash_fb.firebase.sse import open_stream

    async def first_event() -> float:
        start = time.perf_counter()
        stream = open_stream(f"{url}/{path}.json", {}, timeout=60)
        async for event, data in stream:
            assert event == "put" and data["data"]
            break
        elapsed = time.perf_counter() - start
        await stream.aclose()
        return elapsed

    return asyncio.run(first_event())


def run_child(reader: str, url: str, path: str, cap: float) -> float | None:
    """Seconds to the first event, or ``None`` if the run did not finish within ``cap``."""
    cmd = [sys.executable, __file__, "--child", reader, url, path]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=cap + 15, check=True)
    except subprocess.TimeoutExpired:
        return None
    seconds = float(out.stdout.strip().splitlines()[-1])
    return seconds if seconds <= cap else None


# -- the benchmark --------------------------------------------------------------------


def measure(reader: str, url: str, path: str, size: int, runs: int, cap: float) -> dict[str, Any]:
    times: list[float] = []
    for _ in range(runs):
        seconds = run_child(reader, url, path, cap)
        if seconds is None:
            return {
                "reader": reader,
                "bytes": size,
                "runs": times,
                "median_s": None,
                "capped_at_s": cap,
            }
        times.append(seconds)
    return {
        "reader": reader,
        "bytes": size,
        "runs": [round(t, 4) for t in times],
        "median_s": round(statistics.median(times), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--child", nargs=3, metavar=("READER", "URL", "PATH"), help=argparse.SUPPRESS
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--cap", type=float, default=60.0, help="give up on a pyrebase4 run after this"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer runs and smaller pyrebase4 sizes"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    if args.child:
        reader, url, path = args.child
        fn = child_pyrebase if reader == "pyrebase4" else child_ours
        print(f"{fn(url, path):.6f}", flush=True)
        os._exit(0)  # pyrebase4's reader thread is not a daemon

    import requests

    from emdash_fb.emulator.server import ThreadedEmulator

    runs = 3 if args.quick else args.runs
    pyrebase_sizes = [16 * KB, 32 * KB] if args.quick else [16 * KB, 32 * KB, 64 * KB]
    results: list[dict[str, Any]] = []
    with ThreadedEmulator() as emu:
        url = f"http://{emu.database_host}"
        sizes = sorted({*pyrebase_sizes, MB, 4 * MB})
        for size in sizes:
            body = json.dumps(snapshot(size), separators=(",", ":"))
            requests.put(f"{url}/bench/s{size}.json", data=body, timeout=60).raise_for_status()

        def row(reader: str, size: int, n: int) -> None:
            result = measure(reader, url, f"bench/s{size}", size, n, args.cap)
            results.append(result)
            shown = (
                "did not finish" if result["median_s"] is None else f"{result['median_s']:.3f} s"
            )
            print(
                f"{reader:10} {size // KB:6d} KB  median {shown}  runs {result['runs']}", flush=True
            )

        for size in pyrebase_sizes:
            row("pyrebase4", size, runs)
        row("pyrebase4", MB, 1)  # one capped attempt: a full run takes over an hour
        for size in (MB, 4 * MB):
            row("ours", size, runs)

    report = summarise(results, args.cap)
    print(json.dumps(report["summary"], indent=2))
    if not args.quick:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        report["results"] = results
        report["machine"] = {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        }
        report["date"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out.relative_to(REPO)}")


def summarise(results: list[dict[str, Any]], cap: float) -> dict[str, Any]:
    done = [r for r in results if r["reader"] == "pyrebase4" and r["median_s"] is not None]
    py_1mb = next(r for r in results if r["reader"] == "pyrebase4" and r["bytes"] == MB)
    ours_1mb = next(r for r in results if r["reader"] == "ours" and r["bytes"] == MB)
    largest = max(done, key=lambda r: r["bytes"])
    estimate = largest["median_s"] * (MB / largest["bytes"]) ** 2
    summary = {
        "pyrebase4_1MB_median_s": py_1mb["median_s"],
        "pyrebase4_1MB_note": (
            "measured"
            if py_1mb["median_s"] is not None
            else f"did not finish within {cap:g} s; "
            f"quadratic extrapolation from {largest['bytes'] // KB} KB: {estimate:.0f} s"
        ),
        "pyrebase4_1MB_extrapolated_s": round(estimate, 1),
        "ours_1MB_median_s": ours_1mb["median_s"],
    }
    return {"summary": summary}


if __name__ == "__main__":
    main()
