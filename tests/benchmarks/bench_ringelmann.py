#!/usr/bin/env python
"""Black-smoke image analysis of one 1080p JPEG, measured in one process.

Renders a synthetic 1920x1080 scene (tests/unit/synthetic_smoke.py: road, vehicle, a 60%
plume, camera noise and blur), encodes it as a JPEG, then times over --runs runs, with
OpenCV on one thread as in a worker:

- inspect: `inspect_image` (header checks, then a full verifying decode), done on upload;
- decode: `decode_grey`, done by the worker;
- estimate: `estimate_ringelmann` on the decoded grey image;
- total: the three in sequence, timed as one.

Prints medians (wall and CPU time: the CPU time is what a busy, shared machine does not
inflate) as a markdown table, images per second for one process, and the command used.

    .venv/bin/python tests/benchmarks/bench_ringelmann.py [--runs 50] [--quality 90]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from remote_sensing.images import decode_grey, inspect_image  # noqa: E402
from remote_sensing.ringelmann import estimate_ringelmann  # noqa: E402
from tests.unit.synthetic_smoke import Scene, render_jpeg  # noqa: E402

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE_PX = 8000


def measure(step: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of ``step`` over ``runs`` runs, after a warm-up."""
    step()
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.process_time()
        step()
        wall.append(time.perf_counter() - w0)
        cpu.append(time.process_time() - c0)
    return 1000 * statistics.median(wall), 1000 * statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the synthetic snapshot")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    scene = Scene(width=1920, height=1080, blackness=0.6, noise_sigma=4.0, blur_sigma=1.5, seed=1)
    data = render_jpeg(scene, quality=args.quality)
    grey = decode_grey(data)

    def total() -> None:
        inspect_image(data, max_bytes=MAX_BYTES, max_side_px=MAX_SIDE_PX)
        estimate_ringelmann(decode_grey(data))

    figures = {
        "inspect_image": measure(lambda: inspect_image(data, max_bytes=MAX_BYTES, max_side_px=MAX_SIDE_PX), args.runs),
        "decode_grey": measure(lambda: decode_grey(data), args.runs),
        "estimate_ringelmann": measure(lambda: estimate_ringelmann(grey), args.runs),
        "total": measure(total, args.runs),
    }
    estimate = estimate_ringelmann(grey)

    print(f"1920x1080 JPEG q{args.quality}, {len(data) / 1024:.0f} KiB, {args.runs} runs, OpenCV {cv2.__version__}")
    print(f"estimate: level {estimate.level}, blackness {estimate.blackness:.3f} (truth 0.6 -> level 3)")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs\n")
    print("| step | median wall ms | median CPU ms |")
    print("|---|---:|---:|")
    for name, (wall, cpu) in figures.items():
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    wall, cpu = figures["total"]
    print(f"| images/s, one process | {1000 / wall:.0f} | {1000 / cpu:.0f} |")
    print(f"\ncommand: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")


if __name__ == "__main__":
    main()
