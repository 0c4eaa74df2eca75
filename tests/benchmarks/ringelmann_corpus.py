#!/usr/bin/env python
"""Labelled black-smoke passages for measuring the Ringelmann estimator.

A generator of its own, separate from the unit tests' scenes (tests/unit/synthetic_smoke.py):
roads with texture, gradients and lane markings, a vehicle rear seen from a gantry (a
black cab, a white box, a grey van), its contact shadow, and an exhaust plume leaving the
tailpipe and trailing towards the camera. A passage is 1 to 3 frames from a fixed camera:
the vehicle drives away between frames (it moves up and shrinks, rigidly), the plume
trails it and changes, the road stays. The plume multiplies whatever it covers by
``1 - b * alpha``; its label is the blackness of its densest part as drawn, ``b`` times the
99th percentile of alpha (a feather wider than the plume keeps alpha under 1), and
``level = round(blackness / 0.2)``.

Each scene belongs to one family, the stressor it is made for; every other parameter is
drawn from moderate ranges, so every family also varies resolution (720p to 4K), JPEG
quality (60 to 95) and the number of frames. Two disjoint seed sets: ``tune`` (for
adjusting the estimator) and ``eval`` (for the report; never used for tuning).

    .venv/bin/python tests/benchmarks/ringelmann_corpus.py --set eval --out tests/benchmarks/out/corpus-eval

writes ``<family>-<n>-<frame>.jpg`` and ``labels.jsonl`` (one passage a line). ``--family``
(repeatable) generates only those families, with the seeds they have in the full set.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

FAMILIES = (
    "crisp_dense",  # fresh soot right behind the tailpipe: dense, edges barely blurred
    "thin_feathered",  # wide feather, thin to medium density
    "size_position",  # small to large plumes, off-centre, partly out of frame
    "black_cab",  # a dark vehicle, as dark as a dense plume
    "white_box",  # a light box truck, brighter than the road
    "background_step",  # horizon, building line, overpass or building shadow: sharp steps
    "vehicle_shadow",  # cast shadows under and beside the vehicle
    "lane_markings",  # solid and dashed markings, arrows, a crossing, through the plume
    "wet_glare",  # specular reflections on a wet road
    "low_light",  # dusk: dark road, strong noise, bright lights
)
SETS = {"eval": 0, "tune": 1_000_003}  # seed bases: the two sets never share a seed
RESOLUTIONS = ((1280, 720), (1920, 1080), (2560, 1440), (3840, 2160))
RESOLUTION_WEIGHTS = (0.3, 0.4, 0.15, 0.15)
STEP = 0.2


@dataclass
class Passage:
    """What is drawn; everything a report may slice on."""

    family: str
    index: int
    seed: int
    width: int
    height: int
    frames: int
    quality: int
    blackness: float  # 0 when there is no plume
    level: int
    feather: float  # plume edge blur, as a fraction of the frame width
    vehicle: str
    step: str | None
    files: list[str] = field(default_factory=list)


def draw_passage(family: str, index: int, seed: int) -> tuple[Passage, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    width, height = RESOLUTIONS[rng.choice(len(RESOLUTIONS), p=RESOLUTION_WEIGHTS)]
    frames = int(rng.integers(1, 4))
    quality = int(rng.integers(60, 96))
    level = int(rng.integers(0, 6))
    if level == 0:
        blackness = 0.0 if rng.random() < 0.5 else float(rng.uniform(0.03, 0.08))
    elif level == 5:
        blackness = float(rng.uniform(0.91, 0.98))
    else:
        blackness = float(STEP * level + rng.uniform(-0.08, 0.08))
    feather = {"crisp_dense": rng.uniform(0.0008, 0.003), "thin_feathered": rng.uniform(0.02, 0.05)}.get(
        family, rng.uniform(0.002, 0.035)
    )
    if family == "crisp_dense":
        blackness = max(blackness, float(rng.uniform(0.5, 0.98))) if level else blackness
    if family == "thin_feathered":
        blackness = min(blackness, float(rng.uniform(0.1, 0.55)))
    vehicle = {"black_cab": "black_cab", "white_box": "white_box"}.get(
        family, str(rng.choice(["black_cab", "white_box", "grey_van"]))
    )
    step = None
    if family == "background_step" or (family not in ("crisp_dense", "thin_feathered") and rng.random() < 0.15):
        step = str(rng.choice(["horizon", "building_line", "overpass_shadow", "building_shadow"]))
    passage = Passage(family, index, seed, width, height, frames, quality, round(blackness, 4), level,
                      round(float(feather), 5), vehicle, step)
    images, peak = _render(passage, rng)
    # The label is the plume's densest part as drawn: a feather wider than the plume never
    # lets it reach the nominal density.
    passage.blackness = round(blackness * peak, 4)
    passage.level = math.floor(passage.blackness / STEP + 0.5)
    return passage, images


# --- rendering ---------------------------------------------------------------------------


def _render(p: Passage, rng: np.random.Generator) -> tuple[list[np.ndarray], float]:
    """The frames, and the highest plume opacity reached in any of them (0..1)."""
    w, h = p.width, p.height
    low_light = p.family == "low_light"
    road_grey = float(rng.uniform(22, 55) if low_light else rng.uniform(75, 205))
    road = _road(w, h, road_grey, rng)
    _lane_markings(road, road_grey, rng, heavy=p.family == "lane_markings")
    if p.family == "wet_glare":
        _glare(road, rng)
    shade = _background_step(w, h, p.step, rng) if p.step else np.ones((h, w), np.float32)
    vehicle = _vehicle_plan(p, road_grey, rng)
    plume = _plume_plan(p, vehicle, rng)
    noise = float(rng.uniform(4, 9) if low_light else rng.uniform(0.8, 4.0))
    blur = float(rng.uniform(0.5, 1.5)) * w / 1920
    frames = []
    peak = 0.0
    for k in range(p.frames):
        image = road.copy()
        pose = _pose(vehicle, k)
        _vehicle_shadows(image, pose, p.family == "vehicle_shadow", rng)
        _draw_vehicle(image, pose, road_grey, low_light)
        if p.blackness > 0:
            alpha = _plume_alpha(w, h, pose, plume, k, rng)
            image *= 1.0 - p.blackness * alpha
            # Robust peak: a few pixels' worth of turbulence is not the plume's density.
            sample = alpha[::4, ::4]
            peak = max(peak, float(np.percentile(sample[sample > 0.02], 99)) if (sample > 0.02).any() else 0.0)
        image *= shade
        image = cv2.GaussianBlur(image, (0, 0), blur)
        image += rng.normal(0.0, noise, image.shape).astype(np.float32)
        frames.append(np.clip(image + 0.5, 0, 255).astype(np.uint8))
    return frames, peak


def _smooth_noise(w: int, h: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """Zero-mean, unit-ish noise varying over ``cells`` cells across the frame."""
    grid = rng.normal(0.0, 1.0, (max(2, cells * h // w), cells)).astype(np.float32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def _soft(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; a wide one runs on a reduced copy (same result for a smooth field, far cheaper)."""
    h, w = image.shape
    f = max(1, int(sigma / 3))
    if f == 1:
        return cv2.GaussianBlur(image, (0, 0), sigma)
    small = cv2.resize(image, (max(2, w // f), max(2, h // f)), interpolation=cv2.INTER_AREA)
    return cv2.resize(cv2.GaussianBlur(small, (0, 0), sigma / f), (w, h), interpolation=cv2.INTER_LINEAR)


def _road(w: int, h: int, grey: float, rng: np.random.Generator) -> np.ndarray:
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    shading = 1.0 + rng.uniform(-0.18, 0.12) * (1.0 - y) + rng.uniform(-0.1, 0.1) * x + rng.uniform(-0.08, 0.08) * x * x
    texture = 0.035 * _smooth_noise(w, h, 12, rng) + 0.02 * _smooth_noise(w, h, 60, rng)
    patch = np.zeros((h, w), np.float32)
    if rng.random() < 0.4:  # a repaired strip of asphalt with soft edges
        x0 = int(rng.uniform(0.0, 0.7) * w)
        cv2.rectangle(patch, (x0, 0), (x0 + int(rng.uniform(0.08, 0.25) * w), h), 1.0, -1)
        patch = _soft(patch, 0.01 * w) * rng.uniform(-0.08, 0.06)
    return (grey * shading * (1.0 + texture + patch)).astype(np.float32)


def _lane_markings(image: np.ndarray, grey: float, rng: np.random.Generator, heavy: bool) -> None:
    h, w = image.shape
    paint = min(250.0, grey + rng.uniform(50, 110))
    vanishing = np.array([rng.uniform(0.35, 0.65) * w, -rng.uniform(0.4, 1.0) * h])
    lines = rng.uniform(-0.2, 1.2, int(rng.integers(3, 7) if heavy else rng.integers(1, 4))) * w
    for bottom_x in lines:
        direction = np.array([bottom_x, float(h)]) - vanishing
        solid = rng.random() < (0.5 if heavy else 0.2)
        dash, gap = (1.0, 0.0) if solid else (rng.uniform(0.03, 0.07), rng.uniform(0.03, 0.06))
        start = rng.uniform(0.4, 0.6)
        while start < 1.05:
            a, b = vanishing + direction * start, vanishing + direction * min(start + dash, 1.1)
            thickness = max(2, int(rng.uniform(0.006, 0.014) * w * (0.4 + a[1] / h)))
            cv2.line(image, tuple(a.astype(int)), tuple(b.astype(int)), paint, thickness, cv2.LINE_AA)
            start += dash + gap + 1e-3
    if heavy and rng.random() < 0.5:  # a pedestrian crossing
        y0 = int(rng.uniform(0.55, 0.85) * h)
        for x in range(0, w, max(8, int(0.05 * w))):
            cv2.rectangle(image, (x, y0), (x + int(0.025 * w), y0 + int(0.06 * h)), paint, -1)
    if heavy and rng.random() < 0.5:  # an arrow
        cx, cy, s = int(rng.uniform(0.2, 0.8) * w), int(rng.uniform(0.6, 0.9) * h), 0.03 * w
        arrow = np.array([[cx, cy - 2 * s], [cx + s, cy - s], [cx + 0.3 * s, cy - s], [cx + 0.3 * s, cy + 2 * s],
                          [cx - 0.3 * s, cy + 2 * s], [cx - 0.3 * s, cy - s], [cx - s, cy - s]], np.int32)
        cv2.fillPoly(image, [arrow], paint)


def _glare(image: np.ndarray, rng: np.random.Generator) -> None:
    h, w = image.shape
    sheen = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 9))):  # streaks of headlights and sky on wet asphalt
        cx, cy = int(rng.uniform(0, w)), int(rng.uniform(0.3, 1.0) * h)
        axes = (int(rng.uniform(0.01, 0.05) * w), int(rng.uniform(0.05, 0.25) * h))
        cv2.ellipse(sheen, (cx, cy), axes, rng.uniform(-15, 15), 0, 360, float(rng.uniform(0.4, 1.0)), -1)
    sheen = _soft(sheen, 0.01 * w)
    puddles = np.clip(_smooth_noise(w, h, 8, rng) - 0.6, 0, None) * rng.uniform(0.3, 0.8)
    image += (255.0 - image) * np.clip(sheen + puddles, 0.0, 0.9)


def _background_step(w: int, h: int, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative field with a sharp step: brighter sky, a building, a shadow band."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    tilt = math.tan(math.radians(rng.uniform(-6, 6)))
    if kind == "horizon":
        line = rng.uniform(0.12, 0.3) * h + tilt * (x - w / 2)
        field_ = np.where(y < line, rng.uniform(1.3, 1.9), 1.0)
    elif kind == "building_line":
        # A skyline of facades, darker or lighter than the road, above a kerb line.
        edges = np.sort(rng.uniform(0, w, int(rng.integers(2, 6))))
        tops = rng.uniform(0.1, 0.35, edges.size + 1) * h
        top = tops[np.searchsorted(edges, x)]
        field_ = np.where(y < top, rng.uniform(0.45, 0.75) if rng.random() < 0.6 else rng.uniform(1.25, 1.6), 1.0)
    elif kind == "overpass_shadow":
        y0 = rng.uniform(0.05, 0.75) * h + tilt * (x - w / 2)
        field_ = np.where((y > y0) & (y < y0 + rng.uniform(0.12, 0.35) * h), 1.0 - rng.uniform(0.25, 0.6), 1.0)
    else:  # building_shadow: a straight shadow edge across the road at an angle
        angle = math.radians(rng.uniform(25, 70) * rng.choice([-1, 1]))
        cx, cy = rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h
        side = (x - cx) * math.sin(angle) - (y - cy) * math.cos(angle)
        field_ = np.where(side > 0, 1.0 - rng.uniform(0.25, 0.55), 1.0)
    sharp = cv2.GaussianBlur(field_.astype(np.float32), (0, 0), rng.uniform(0.5, 2.5) * w / 1920)
    return np.clip(sharp, 0.0, 255.0 / 80.0)


@dataclass(frozen=True)
class _Vehicle:
    kind: str
    cx: float  # rear centre, fraction of width
    bottom: float  # rear bottom edge, fraction of height
    width: float  # fraction of width
    aspect: float  # height / width
    grey: float
    advance: float  # how far it moves up per frame, fraction of height
    drift: float  # sideways per frame, fraction of width
    shrink: float  # scale per frame
    pipe: float  # tailpipe position across the rear, -1 left .. 1 right
    shadow_dx: float  # cast shadow offset (vehicle_shadow), fraction of vehicle width
    shadow_dark: float
    w: int
    h: int


def _vehicle_plan(p: Passage, road_grey: float, rng: np.random.Generator) -> _Vehicle:
    grey = {"black_cab": rng.uniform(10, 40), "white_box": rng.uniform(185, 245)}.get(
        p.vehicle, rng.uniform(0.3, 0.75) * road_grey
    )
    width = rng.uniform(0.16, 0.34) * (0.8 if p.family == "size_position" and rng.random() < 0.5 else 1.0)
    return _Vehicle(
        kind=p.vehicle, cx=rng.uniform(0.3, 0.7) if p.family != "size_position" else rng.uniform(0.15, 0.85),
        bottom=rng.uniform(0.45, 0.62), width=width,
        aspect=rng.uniform(0.8, 1.2) if p.vehicle == "white_box" else rng.uniform(0.55, 0.85),
        grey=float(grey), advance=rng.uniform(0.05, 0.12), drift=rng.uniform(-0.03, 0.03),
        shrink=rng.uniform(0.85, 0.95), pipe=rng.uniform(-0.8, 0.8), shadow_dx=rng.uniform(-0.6, 0.6),
        shadow_dark=rng.uniform(0.3, 0.6), w=p.width, h=p.height,
    )


@dataclass(frozen=True)
class _Pose:
    v: _Vehicle
    x0: float
    x1: float
    y0: float
    y1: float  # pixel box of the rear


def _pose(v: _Vehicle, k: int) -> _Pose:
    scale = v.shrink**k
    width = v.width * scale * v.w
    cx = (v.cx + v.drift * k) * v.w
    bottom = (v.bottom - v.advance * k) * v.h
    return _Pose(v, cx - width / 2, cx + width / 2, bottom - width * v.aspect, bottom)


def _vehicle_shadows(image: np.ndarray, pose: _Pose, cast: bool, rng: np.random.Generator) -> None:
    w = image.shape[1]
    v, width = pose.v, pose.x1 - pose.x0
    shadow = np.zeros_like(image)
    top, bottom = pose.y1 - 0.05 * width, pose.y1 + 0.06 * width
    contact = np.array(
        [[pose.x0, top], [pose.x1, top], [pose.x1 + 0.03 * width, bottom], [pose.x0 - 0.03 * width, bottom]]
    )
    cv2.fillPoly(shadow, [contact.astype(np.int32)], 0.5)
    if cast:  # the sun casts the body beside and below it: a parallelogram
        dx, dy = v.shadow_dx * width, 0.12 * width
        body = np.array([[pose.x0, pose.y1 - 0.3 * width], [pose.x1, pose.y1 - 0.3 * width],
                         [pose.x1 + dx, pose.y1 + dy], [pose.x0 + dx, pose.y1 + dy]])
        cv2.fillPoly(shadow, [body.astype(np.int32)], v.shadow_dark)
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(0.5, 0.002 * w))
    image *= 1.0 - shadow


def _draw_vehicle(image: np.ndarray, pose: _Pose, road_grey: float, low_light: bool) -> None:
    v = pose.v
    width, height = pose.x1 - pose.x0, pose.y1 - pose.y0

    def rect(fx0: float, fy0: float, fx1: float, fy1: float, grey: float) -> None:
        a = (int(pose.x0 + fx0 * width), int(pose.y0 + fy0 * height))
        b = (int(pose.x0 + fx1 * width), int(pose.y0 + fy1 * height))
        cv2.rectangle(image, a, b, float(grey), -1, cv2.LINE_AA)

    rect(0.03, 0.86, 0.2, 1.0, 14.0)  # wheels
    rect(0.8, 0.86, 0.97, 1.0, 14.0)
    rect(0.0, 0.0, 1.0, 0.9, v.grey)
    if v.kind == "white_box":  # a box body: doors and hinges
        rect(0.495, 0.02, 0.505, 0.82, 0.8 * v.grey)
        rect(0.0, 0.82, 1.0, 0.9, 45.0)
    else:
        rect(0.1, 0.08, 0.9, 0.4, 0.55 * v.grey + 8)  # rear window
    light = 250.0 if low_light else min(250.0, v.grey + 70)
    rect(0.03, 0.58, 0.14, 0.7, light)
    rect(0.86, 0.58, 0.97, 0.7, light)
    rect(0.4, 0.66, 0.6, 0.77, 190.0 if not low_light else 120.0)  # number plate
    rect(0.0, 0.8, 1.0, 0.9, 0.7 * v.grey + 5)  # bumper
    del road_grey


@dataclass(frozen=True)
class _Plume:
    length: float  # fraction of height
    spread: float  # final radius / length
    angle: float  # degrees off straight down (towards the camera)
    start_radius: float  # fraction of vehicle width
    feather: float
    decay: float  # opacity lost by the far end
    turbulence: float


def _plume_plan(p: Passage, v: _Vehicle, rng: np.random.Generator) -> _Plume:
    big = p.family == "size_position"
    return _Plume(
        length=rng.uniform(0.08, 0.5) if big else rng.uniform(0.15, 0.4),
        spread=rng.uniform(0.15, 0.45), angle=rng.uniform(-35, 35),
        start_radius=rng.uniform(0.04, 0.1), feather=p.feather, decay=rng.uniform(0.0, 0.25),
        turbulence=rng.uniform(0.05, 0.15),
    )


def _plume_alpha(w: int, h: int, pose: _Pose, plume: _Plume, k: int, rng: np.random.Generator) -> np.ndarray:
    """Opacity: discs along a trailing path, widening and fading, with turbulent texture."""
    width = pose.x1 - pose.x0
    origin = np.array([pose.x0 + (0.5 + 0.4 * pose.v.pipe) * width, pose.y1 - 0.05 * width])
    theta = math.radians(plume.angle)
    direction = np.array([math.sin(theta), math.cos(theta)])
    length = plume.length * h * (1.0 + 0.15 * k)  # it grows as the vehicle leaves
    density = np.zeros((h, w), np.float32)
    steps = 24
    for i in range(steps + 1):
        t = i / steps
        wobble = np.array([math.sin(7 * t + k), 0.0]) * 0.05 * length
        centre = origin + direction * length * t + wobble
        radius = max(1.0, plume.start_radius * width + plume.spread * length * t)
        cv2.circle(density, tuple(centre.astype(int)), int(radius), float(1.0 - plume.decay * t), -1, cv2.LINE_AA)
    texture = 1.0 + plume.turbulence * _smooth_noise(w, h, 40, rng)
    alpha = np.clip(density * texture, 0.0, 1.0)
    return _soft(alpha, max(0.7, plume.feather * w))


# --- files -------------------------------------------------------------------------------


def generate(out: Path, which: str, per_family: int, families: Sequence[str] = FAMILIES) -> list[Passage]:
    out.mkdir(parents=True, exist_ok=True)
    passages = []
    with (out / "labels.jsonl").open("w") as labels:
        for f, family in enumerate(FAMILIES):
            if family not in families:
                continue
            for n in range(per_family):
                seed = SETS[which] + 1000 * f + n
                passage, frames = draw_passage(family, n, seed)
                for k, frame in enumerate(frames):
                    name = f"{family}-{n:03d}-{k}.jpg"
                    ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, passage.quality])
                    assert ok
                    (out / name).write_bytes(data.tobytes())
                    passage.files.append(name)
                labels.write(json.dumps(asdict(passage)) + "\n")
                passages.append(passage)
    return passages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", choices=sorted(SETS), default="eval", dest="which")
    parser.add_argument("--per-family", type=int, default=64)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--family", choices=FAMILIES, action="append", help="only these families (repeatable)")
    args = parser.parse_args()
    passages = generate(args.out, args.which, args.per_family, args.family or FAMILIES)
    print(f"{len(passages)} passages, {sum(p.frames for p in passages)} images in {args.out}")


if __name__ == "__main__":
    main()
