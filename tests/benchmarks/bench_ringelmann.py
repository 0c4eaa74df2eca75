#!/usr/bin/env python
"""Black-smoke image analysis of one JPEG at 720p, 1080p and 4K, measured in one process.

Renders a synthetic scene at each size (tests/unit/synthetic_smoke.py: road, vehicle, a 60%
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


SIZES = ((1280, 720), (1920, 1080), (3840, 2160))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality of the synthetic snapshot")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    print(f"JPEG q{args.quality}, {args.runs} runs, OpenCV {cv2.__version__}\n")
    print("| size | KiB | step | median wall ms | median CPU ms |")
    print("|---|---:|---|---:|---:|")
    for width, height in SIZES:
        scene = Scene(width=width, height=height, blackness=0.6, noise_sigma=4.0, blur_sigma=1.5 * width / 1920, seed=1)
        data = render_jpeg(scene, quality=args.quality)
        grey = decode_grey(data)

        def total(data: bytes = data) -> None:
            inspect_image(data, max_bytes=MAX_BYTES, max_side_px=MAX_SIDE_PX)
            estimate_ringelmann(decode_grey(data))

        figures = {
            "inspect_image": measure(
                lambda data=data: inspect_image(data, max_bytes=MAX_BYTES, max_side_px=MAX_SIDE_PX), args.runs
            ),
            "decode_grey": measure(lambda data=data: decode_grey(data), args.runs),
            "estimate_ringelmann": measure(lambda grey=grey: estimate_ringelmann(grey), args.runs),
            "total": measure(total, args.runs),
        }
        estimate = estimate_ringelmann(grey)
        for name, (wall, cpu) in figures.items():
            print(f"| {width}x{height} | {len(data) / 1024:.0f} | {name} | {wall:.1f} | {cpu:.1f} |")
        print(f"| {width}x{height} | | estimate: level {estimate.level}, blackness {estimate.blackness:.3f} "
              "(truth 0.6 -> level 3) | | |")
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"command: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")


if __name__ == "__main__":
    main()
