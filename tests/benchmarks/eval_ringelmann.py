#!/usr/bin/env python
"""Accuracy and speed of the Ringelmann estimator on a generated corpus, as markdown.

Generate the corpus first (tests/benchmarks/ringelmann_corpus.py), then:

    .venv/bin/python tests/benchmarks/eval_ringelmann.py tests/benchmarks/out/corpus-eval [--single]

A passage is estimated the way the worker does it (remote_sensing.snapshots.analyse): all
its images together, the highest level kept. ``--single`` estimates each image alone, as
the single-image path does. ``--code DIR`` imports the estimator from another checkout
(for a before/after comparison; a checkout without the passage API is run per image).
Prints, per family and overall: the confusion matrix (rows: true level, columns:
estimated), exact and within-one accuracy, Spearman's rank correlation between true and
estimated blackness, and how many passages of true level >= 3 were estimated <= 1; then the
same figures per resolution, frame count and JPEG quality band, and the time per image.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[2]
LEVELS = range(6)


def spearman(a: Iterable[float], b: Iterable[float]) -> float:
    """Rank correlation with average ranks for ties (what the review queue sorts by)."""
    ra, rb = _ranks(np.asarray(list(a), float)), _ranks(np.asarray(list(b), float))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = values.argsort(kind="stable")
    ranks = np.empty(values.size)
    ranks[order] = np.arange(values.size)
    for value in np.unique(values):  # ties share their mean rank
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def table(rows: list[dict]) -> list[str]:
    true = [r["level"] for r in rows]
    got = [r["estimated"] for r in rows]
    matrix = np.zeros((6, 6), int)
    for t, g in zip(true, got, strict=True):
        matrix[t, g] += 1
    exact = np.mean([t == g for t, g in zip(true, got, strict=True)])
    within = np.mean([abs(t - g) <= 1 for t, g in zip(true, got, strict=True)])
    missed = sum(t >= 3 and g <= 1 for t, g in zip(true, got, strict=True))
    rho = spearman([r["blackness"] for r in rows], [r["estimated_blackness"] for r in rows])
    lines = [f"n = {len(rows)}, exact {exact:.1%}, within one {within:.1%}, Spearman {rho:.3f}, "
             f"true >= 3 estimated <= 1: {missed}", "",
             "| true \\ estimated | " + " | ".join(str(level) for level in LEVELS) + " |",
             "|---|" + "---:|" * 6]
    lines += [f"| {t} | " + " | ".join(str(matrix[t, g]) for g in LEVELS) + " |" for t in LEVELS]
    return lines


def summary(name: str, rows: list[dict]) -> str:
    true = [r["level"] for r in rows]
    got = [r["estimated"] for r in rows]
    exact = np.mean([t == g for t, g in zip(true, got, strict=True)])
    within = np.mean([abs(t - g) <= 1 for t, g in zip(true, got, strict=True)])
    missed = sum(t >= 3 and g <= 1 for t, g in zip(true, got, strict=True))
    rho = spearman([r["blackness"] for r in rows], [r["estimated_blackness"] for r in rows])
    return f"| {name} | {len(rows)} | {exact:.1%} | {within:.1%} | {rho:.3f} | {missed} |"


def load_estimator(code: Path | None, single: bool) -> Callable[[list[bytes]], tuple[int, float]]:
    sys.path.insert(0, str(code or REPO))
    from remote_sensing import ringelmann
    from remote_sensing.images import decode_grey

    passage_api = getattr(ringelmann, "estimate_passage", None)

    def estimate(blobs: list[bytes]) -> tuple[int, float]:
        greys = [decode_grey(blob) for blob in blobs]
        if passage_api is not None and not single:
            estimates = passage_api(greys, 0.2)
        else:
            estimates = [ringelmann.estimate_ringelmann(grey, 0.2) for grey in greys]
        best = max(estimates, key=lambda e: (e.level, e.blackness))
        return best.level, best.blackness

    return estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--single", action="store_true", help="estimate each image alone")
    parser.add_argument("--code", type=Path, help="checkout to import remote_sensing from")
    parser.add_argument("--family", help="only this family")
    parser.add_argument("--failures", action="store_true", help="list passages off by more than one")
    args = parser.parse_args()

    cv2.setNumThreads(1)
    estimate = load_estimator(args.code, args.single)
    passages = [json.loads(line) for line in (args.corpus / "labels.jsonl").read_text().splitlines()]
    if args.family:
        passages = [p for p in passages if p["family"] == args.family]
    per_image_ms: dict[str, list[float]] = defaultdict(list)
    rows = []
    started = time.perf_counter()
    for p in passages:
        blobs = [(args.corpus / name).read_bytes() for name in p["files"]]
        t0 = time.perf_counter()
        level, blackness = estimate(blobs)
        per_image_ms[f"{p['width']}x{p['height']}"].append(1000 * (time.perf_counter() - t0) / len(blobs))
        rows.append({**p, "estimated": level, "estimated_blackness": blackness})
    elapsed = time.perf_counter() - started

    print(f"corpus {args.corpus.name}: {len(rows)} passages, {sum(p['frames'] for p in rows)} images, "
          f"{'each image alone' if args.single else 'passages'}; run time {elapsed:.0f} s\n")
    print("| slice | n | exact | within one | Spearman | true >= 3 estimated <= 1 |")
    print("|---|---:|---:|---:|---:|---:|")
    slices: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        slices[r["family"]].append(r)
    for name, group in slices.items():
        print(summary(name, group))
    print(summary("**all**", rows))
    by: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by[f"{r['width']}x{r['height']}"].append(r)
        by[f"{r['frames']} frame{'s' if r['frames'] > 1 else ''}"].append(r)
        by[f"JPEG q{(r['quality'] // 10) * 10}-{(r['quality'] // 10) * 10 + 9}"].append(r)
        by[f"step: {r['step']}"].append(r)
        by[f"vehicle: {r['vehicle']}"].append(r)
    for name in sorted(by):
        print(summary(name, by[name]))
    print("\n**all passages**\n")
    print("\n".join(table(rows)))
    for name, group in slices.items():
        print(f"\n**{name}**\n")
        print("\n".join(table(group)))
    print("\n| image size | images | median ms per image (passage / frames) |")
    print("|---|---:|---:|")
    for size, times in sorted(per_image_ms.items(), key=lambda kv: int(kv[0].split("x")[0])):
        print(f"| {size} | {len(times)} | {statistics.median(times):.1f} |")
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    print(f"command: {shlex.join([os.path.relpath(sys.executable), *sys.argv])}")
    if args.failures:
        print("\nfailures (off by more than one):")
        for r in rows:
            if abs(r["level"] - r["estimated"]) > 1:
                print(f"  {r['files'][0]} true {r['level']} (b {r['blackness']}) est {r['estimated']} "
                      f"(b {r['estimated_blackness']:.2f}) vehicle {r['vehicle']} step {r['step']} "
                      f"frames {r['frames']}")


if __name__ == "__main__":
    main()
