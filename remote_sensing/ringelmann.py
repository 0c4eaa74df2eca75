"""Ringelmann estimate (0..5) of an exhaust plume in a roadside black-smoke snapshot.

Method (details, measured accuracy and limits in docs/ringelmann.md):

1. Work on a copy downscaled to ``WORK_WIDTH`` px. A small median and an adaptive blur
   suppress sensor noise and JPEG blocking; a grey opening removes thin bright details
   (lane markings, glints) so they neither hide smoke nor cut it apart.
2. Find hard (camera-sharp) edges against a first road model. Hard edges that cross the
   frame (a horizon, a building line, an overpass shadow; straight ones are drawn whole
   where the vehicle or the plume interrupts them) bound background regions; each
   gets its own road model (a robust quadratic over tile means, refined by the road tiles
   around each point), so a sharp step in the background is not taken for smoke.
3. Find the vehicle rear: the widest pair of long upright hard edges joined by a roof line
   that ends at their corners.
4. Pixels darker than the model by more than half a Ringelmann step are candidates, cut
   apart by hard edges. The plume is the largest, darkest, softest component that is not
   on or flat under the vehicle rear, not beside or above it, not a sharp straight-edged
   shape (a vehicle part, a cast shadow) unless it reaches well behind the vehicle, not a
   band across the frame, and not unchanged in the passage's other frames.
5. Blackness = 1 - plume / background, in ratios to the road model: the plume's densest
   tenth over the component's core (its thickest half, clear of the feathered rim), the
   background's median over a band of road just outside it. Level = round(blackness /
   step), clamped to 0..5.

The estimate orders the review queue; a person confirms the level.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from remote_sensing.images import decode_grey

Box = tuple[int, int, int, int]

WORK_WIDTH = 480  # a portrait frame is fitted by its height instead, so the cost stays bounded
MAX_LEVEL = 5

# Pixel sizes below are at the working width.
_MIN_BLUR_SIGMA, _MAX_BLUR_SIGMA = 1.5, 3.0
# A Gaussian of sigma s divides white noise by about 3.5 s: one unit of sigma per 3.5%
# of relative noise leaves about 1%, well under the 10% contrast of a faint plume.
_TARGET_NOISE = 0.035
_OPENING_PX = 15  # wider than a lane marking
_TILES_ACROSS = 30
_FIT_ROUNDS = 5
_FIT_CLIP_SIGMA = 2.0
_LOCAL_SIGMA_TILES = 2.0
_FALLBACK_WEIGHT = 0.05  # where no road tile is near, trust the fitted surface
_MIN_REGION_FRACTION = 0.04
_SPAN_FRACTION = 0.9  # a region this wide or tall is background: no vehicle or plume is
_TILE_MEMBER_SHARE = 0.5
_QUADRATIC_MIN_TILES = 24
_RIDGE = 1e-6  # keeps the normal equations solvable when the tiles lie on a line
_COARSE_SIGMA = 8.0
_EDGE_MIN_CONTRAST = 0.15  # relative grey step below which an edge does not matter
_HARD_BAND_PX = 3
# A straight hard edge seen over this share of its chord across the frame is a background step.
_LINE_SUPPORT = 0.5
_LINE_UPRIGHT_DEG = 15.0  # steeper lines are the vehicle's sides
_MAX_LINES = 12  # the strongest Hough lines checked
_SOBEL_UNIT = 128.0  # Sobel 5x5 weighs a unit slope as 128
_UPRIGHT_RATIO = 4.0  # |gx| / |gy| of an edge within 14 degrees of vertical
_SIDE_MIN_PX = 12
_VEHICLE_WIDTH = (0.06, 0.5)  # of the frame width
_SIDE_OVERLAP = 0.6
_ROOF_SHARE = 0.6
_LEDGE_REACH = 0.25  # of the box's width: how far past its corners a roof line must not run on
_UNDER_VEHICLE = 0.1  # of the vehicle's width: the band under its rear that is wheels and shadow
_TRAIL_REACH = 0.25  # of the vehicle's width: how far behind the rear only smoke reaches
_STRIP_ASPECT = 0.3  # a strip under the vehicle is flatter than this (height / width)
_STRIP_MARGIN = 0.1  # of the vehicle's width
# Frames of a passage: something moved when this share of pixels changed by this much;
# a region is static when this share of it changed by less than that.
_MOVED_DIFFERENCE, _MOVED_SHARE = 0.1, 0.01
_STATIC_DIFFERENCE, _STATIC_SHARE = 0.04, 0.9
_RATIO_FLOOR = 0.01  # one grey level in a hundred: keeps the SNR finite on a flawless image
_HARD_SLOPE_RATIO = 1.7  # fine / coarse slope: ~2.3 and up for a camera-sharp step, ~1.3 for smoke
_MIN_AREA_FRACTION = 0.003
_CONFIDENT_AREA_FRACTION = 0.04  # confidence in the size of the region saturates here
_MAX_HARDNESS = 0.85  # sharper all round than this, a straight-edged component is an object
_STRAIGHT_TOLERANCE_PX = 1.5
_STRAIGHT_MIN_PX = 24
_STRAIGHT_SHARE = 0.6  # of the outline in long straight segments: a box, a strip, a parallelogram
_OUTLINE_MAX_POINTS = 64
_RING_GAP_PX, _RING_WIDTH_PX = 8, 12
_QUARTILES = (25, 50, 75)
_DENSEST_PERCENTILE = 10

_threads_limited = False


@dataclass(frozen=True)
class RingelmannEstimate:
    level: int
    blackness: float
    confidence: float
    plume_box: Box | None  # x, y, w, h in original image pixels
    background_box: Box | None
    outline: list[list[int]] | None = None  # the plume region's polygon, original image pixels

    def plume_record(self, image: int) -> dict[str, Any] | None:
        """The chosen region as stored with the snapshot for the review page, or None."""
        if self.plume_box is None or not self.outline:
            return None
        return {"image": image, "polygon": self.outline, "bbox": list(self.plume_box)}

    def to_record(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "blackness": round(self.blackness, 3),
            "confidence": round(self.confidence, 3),
            "plume_box": list(self.plume_box) if self.plume_box else None,
            "background_box": list(self.background_box) if self.background_box else None,
        }


@dataclass(frozen=True)
class _Work:
    """The working image and the maps derived from it."""

    scale: float  # original px per working px
    flat: np.ndarray  # float32 grey, denoised, thin bright details removed
    ratio: np.ndarray  # flat / road model
    dark: np.ndarray  # candidate pixels
    hard: np.ndarray  # hard edges, dilated into a band
    vehicle: Box | None  # the vehicle rear, in working pixels


def estimate_from_bytes(data: bytes, step: float = 0.2) -> RingelmannEstimate:
    """Decode an inspected JPEG or PNG and estimate its Ringelmann level."""
    return estimate_ringelmann(decode_grey(data), step)


def estimate_ringelmann(grey: np.ndarray, step: float = 0.2) -> RingelmannEstimate:
    """Estimate the Ringelmann level of the plume in a 2-D uint8 grey snapshot.

    ``step`` is the blackness of one Ringelmann level (policy; 0.2 by the standard).
    """
    return estimate_passage([grey], step)[0]


def estimate_passage(greys: Sequence[np.ndarray], step: float = 0.2) -> list[RingelmannEstimate]:
    """One estimate per image of a passage (1 to 3 frames of one vehicle from one camera)."""
    for grey in greys:
        if grey.ndim != 2 or grey.dtype != np.uint8:
            raise ValueError("expected 2-D uint8 grey images")
    _limit_threads()
    works = [_prepare(grey, dark_margin=step / 2) for grey in greys]
    return [
        _estimate(work, step, [other for other in works if other is not work and _moved(work, other)])
        for work in works
    ]


def _moved(work: _Work, other: _Work) -> bool:
    """Whether ``other`` is another frame of the same camera in which something moved."""
    if other.ratio.shape != work.ratio.shape:
        return False
    return float((np.abs(work.ratio - other.ratio) > _MOVED_DIFFERENCE).mean()) >= _MOVED_SHARE


def _estimate(work: _Work, step: float, others: Sequence[_Work] = ()) -> RingelmannEstimate:
    plume = _find_plume(work, others)
    if plume is None:
        # Confidence in "no plume": the share of the frame that looks like bare road.
        return RingelmannEstimate(0, 0.0, float(1.0 - work.dark.mean()), None, None)
    mask, hardness = plume
    return _measure(work, mask, hardness, step)


def _limit_threads() -> None:
    # One thread per worker process; set lazily because workers fork after import.
    global _threads_limited
    if not _threads_limited:
        cv2.setNumThreads(1)
        _threads_limited = True


def _prepare(grey: np.ndarray, dark_margin: float) -> _Work:
    height, width = grey.shape[:2]
    scale = max(1.0, width / WORK_WIDTH, height / WORK_WIDTH)
    size = (max(1, round(width / scale)), max(1, round(height / scale)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA) if scale > 1 else grey
    # Median first: opening a noisy image would leave sharp-edged plateaus.
    smooth = cv2.GaussianBlur(cv2.medianBlur(small, 5).astype(np.float32), (0, 0), _blur_sigma(small))
    opened = cv2.morphologyEx(smooth, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (_OPENING_PX,) * 2))
    flat = cv2.GaussianBlur(opened, (0, 0), _MIN_BLUR_SIGMA)
    hard, upright, thin = _hard_edges(flat / np.maximum(_road_model(flat), 1.0))
    lines = _crossing_lines(thin, hard)
    ratio = flat / np.maximum(_stepped_road_model(flat, hard | lines), 1.0)
    return _Work(scale, flat, ratio, ratio < 1.0 - dark_margin, hard, _vehicle_box(upright, hard, lines))


def _blur_sigma(small: np.ndarray) -> float:
    """Blur enough to bring sensor noise well under the contrast of a plume edge."""
    # Immerkaer's estimate: this Laplacian-difference kernel cancels smooth image content.
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    laplacian = cv2.filter2D(small, cv2.CV_16S, kernel)
    noise = math.sqrt(math.pi / 2) / 6 * cv2.norm(laplacian, cv2.NORM_L1) / laplacian.size
    relative = noise / max(cv2.mean(small)[0], 1.0)
    return min(_MAX_BLUR_SIGMA, max(_MIN_BLUR_SIGMA, relative / _TARGET_NOISE))


def _stepped_road_model(flat: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """The bare road, modelled apart on each side of the sharp steps that cross the frame.

    A horizon, a building line or the shadow of an overpass is a hard edge from one side of
    the frame to the other: the regions it bounds span the frame, which no vehicle or plume
    does. Each such region gets its own road model; every other pixel (objects, the edge
    bands) takes the model of the nearest spanning region.
    """
    height, width = flat.shape
    count, labels, stats, _ = cv2.connectedComponentsWithStats((~hard).astype(np.uint8), connectivity=4)
    spanning = [
        label for label in range(1, count)
        if stats[label, cv2.CC_STAT_AREA] >= _MIN_REGION_FRACTION * flat.size
        and (stats[label, cv2.CC_STAT_WIDTH] >= _SPAN_FRACTION * width
             or stats[label, cv2.CC_STAT_HEIGHT] >= _SPAN_FRACTION * height)
    ]
    if len(spanning) <= 1:
        return _road_model(flat, labels == spanning[0] if spanning else None)
    # Nearest spanning region of every pixel (labels of the nearest zero pixel).
    background = np.isin(labels, spanning)
    _, nearest = cv2.distanceTransformWithLabels(
        (~background).astype(np.uint8), cv2.DIST_L2, 3, labelType=cv2.DIST_LABEL_PIXEL
    )
    owner = np.zeros(nearest.max() + 1, np.int32)
    owner[nearest[background]] = labels[background]
    region = owner[nearest]
    model = np.empty_like(flat)
    for label in spanning:
        inside = region == label
        model[inside] = _road_model(flat, labels == label)[inside]
    return model


def _road_model(flat: np.ndarray, within: np.ndarray | None = None) -> np.ndarray:
    """The grey each pixel would have if nothing stood on the road (fitted on ``within``)."""
    height, width = flat.shape
    tile = max(2, width // _TILES_ACROSS)
    grid_w, grid_h = max(1, width // tile), max(1, height // tile)
    if within is None:
        grid = cv2.resize(flat, (grid_w, grid_h), interpolation=cv2.INTER_AREA).astype(np.float64)
        member = np.ones(grid.shape, bool)
    else:
        share = cv2.resize(within.astype(np.float32), (grid_w, grid_h), interpolation=cv2.INTER_AREA)
        inside = np.where(within, flat, 0.0).astype(np.float32)
        total = cv2.resize(inside, (grid_w, grid_h), interpolation=cv2.INTER_AREA)
        grid = (total / np.maximum(share, 1e-6)).astype(np.float64)
        member = share >= _TILE_MEMBER_SHARE
        if member.sum() < 3:  # a sliver: its median is all there is to know
            return np.full_like(flat, float(np.median(flat[within])))
    fit, road_tiles = _robust_quadratic(grid, member)
    # Follow local lighting where road tiles are seen; fall back to the surface elsewhere.
    weight = road_tiles.astype(np.float64)
    local = cv2.GaussianBlur(weight * grid / fit, (0, 0), _LOCAL_SIGMA_TILES) + _FALLBACK_WEIGHT
    support = cv2.GaussianBlur(weight, (0, 0), _LOCAL_SIGMA_TILES) + _FALLBACK_WEIGHT
    model = (fit * local / support).astype(np.float32)
    return cv2.resize(model, (width, height), interpolation=cv2.INTER_LINEAR)


def _robust_quadratic(grid: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A quadratic surface through the member tiles, refitted without outliers; and the inliers.

    Few tiles (a narrow band between two steps) get a plane instead: a quadratic would
    swing wildly outside them.
    """
    grid_h, grid_w = grid.shape
    y, x = np.mgrid[-1.0 : 1.0 : grid_h * 1j, -1.0 : 1.0 : grid_w * 1j]
    terms = [np.ones_like(x), x, y, x * x, x * y, y * y]
    design = np.stack(terms if member.sum() >= _QUADRATIC_MIN_TILES else terms[:3], axis=-1).reshape(grid.size, -1)
    values = grid.ravel()
    inliers = member.ravel().copy()
    for _ in range(_FIT_ROUNDS):
        used = design[inliers]
        # Normal equations: a 6x6 solve, far cheaper than a least-squares routine per round.
        coef = np.linalg.solve(used.T @ used + _RIDGE * np.eye(used.shape[1]), used.T @ values[inliers])
        residual = values - design @ coef
        sigma = max(1.4826 * float(np.median(np.abs(residual[inliers]))), 0.5)
        # Dark objects are what we look for, so clip them harder than bright ones.
        inliers = member.ravel() & (residual > -_FIT_CLIP_SIGMA * sigma) & (residual < 2 * _FIT_CLIP_SIGMA * sigma)
        if inliers.sum() < design.shape[1]:
            inliers = member.ravel()
            break
    fit = np.maximum((design @ coef).reshape(grid_h, grid_w), 1.0)
    return fit, inliers.reshape(grid_h, grid_w)


def _hard_edges(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sharp transitions of real contrast, dilated into a band; the upright ones and all, as found.

    A step blurred by sigma has a peak slope proportional to 1/sigma. Blurring further by
    ``_COARSE_SIGMA`` barely lowers the slope of a wide (feathered) step but divides that
    of a narrow one, so the ratio of the two slopes tells object outlines from smoke.
    """
    height, width = ratio.shape
    # The coarse blur runs at half size: same result for a smooth image, a quarter the cost.
    half = cv2.resize(ratio, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)
    half = cv2.GaussianBlur(half, (0, 0), _COARSE_SIGMA / 2)
    coarse = cv2.resize(half, (width, height), interpolation=cv2.INTER_LINEAR)
    gx = cv2.Sobel(ratio, cv2.CV_32F, 1, 0, ksize=5)
    gy = cv2.Sobel(ratio, cv2.CV_32F, 0, 1, ksize=5)
    fine_slope, coarse_slope = cv2.magnitude(gx, gy) / _SOBEL_UNIT, _slope(coarse)
    min_slope = _EDGE_MIN_CONTRAST / (math.sqrt(2 * math.pi) * _COARSE_SIGMA)
    hard = (coarse_slope > min_slope) & (fine_slope > _HARD_SLOPE_RATIO * coarse_slope)
    upright = hard & (np.abs(gx) > _UPRIGHT_RATIO * np.abs(gy))
    return cv2.dilate(hard.astype(np.uint8), _disc(_HARD_BAND_PX)) > 0, upright, hard


def _crossing_lines(thin: np.ndarray, hard: np.ndarray) -> np.ndarray:
    """Straight hard edges that cross the frame, drawn whole where something interrupts them.

    The edge of an overpass or building shadow, a horizon or a kerb line is straight and runs
    from border to border, but the vehicle and the plume standing on it break it into pieces,
    none of which bounds a region alone. A straight line seen over ``_LINE_SUPPORT`` of its
    chord across the frame is such a step: no vehicle is that wide. Lines within
    ``_LINE_UPRIGHT_DEG`` of vertical are left out: those are the vehicle's sides.
    """
    height, width = thin.shape
    # Voting at half size costs a quarter; the chord is then checked at full size.
    half = cv2.resize(thin.astype(np.uint8), (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)
    # theta is the angle of the line's normal: near 0 or 180 degrees the line is upright.
    upright = math.radians(_LINE_UPRIGHT_DEG)
    found = cv2.HoughLines(
        half, 1, math.pi / 180, round(_LINE_SUPPORT * min(width, height) / 2),
        min_theta=upright, max_theta=math.pi - upright,
    )
    lines = np.zeros(thin.shape, np.uint8)
    for rho, theta in ([] if found is None else found[:_MAX_LINES, 0]):
        chord = _chord(2 * float(rho), float(theta), width, height)
        if chord is None:
            continue
        xs, ys = chord
        if hard[ys, xs].mean() >= _LINE_SUPPORT:
            cv2.line(lines, (int(xs[0]), int(ys[0])), (int(xs[-1]), int(ys[-1])), 1, 2 * _HARD_BAND_PX - 1)
    return lines > 0


def _chord(rho: float, theta: float, width: int, height: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Pixel coordinates, one per pixel of length, of the line ``x cos t + y sin t = rho`` in the frame."""
    c, s = math.cos(theta), math.sin(theta)
    # Not upright (|s| > sin of the upright limit): parametrise by x and clip to the frame.
    x = np.arange(width, dtype=np.float64)
    y = (rho - x * c) / s
    inside = (y >= 0) & (y <= height - 1)
    if inside.sum() < 2:
        return None
    x, y = x[inside], y[inside]
    steps = max(2, math.ceil(math.hypot(x[-1] - x[0], y[-1] - y[0])))
    t = np.linspace(0.0, 1.0, steps)
    xs = np.round(x[0] + t * (x[-1] - x[0])).astype(np.intp)
    ys = np.round(y[0] + t * (y[-1] - y[0])).astype(np.intp)
    return xs, ys


def _vehicle_box(upright: np.ndarray, hard: np.ndarray, lines: np.ndarray) -> Box | None:
    """The vehicle rear: the pair of long upright hard edges joined by a hard top edge.

    Seen from behind, a vehicle is a box: its sides are the longest upright camera-sharp
    edges in the frame, and a roof line (or the top of the frame) joins them. A plume's
    sides lean and curve, and nothing straight closes its top. ``lines`` are the hard
    edges that cross the frame (a roof may sit on a horizon). Returns x, y, w, h in
    working pixels.
    """
    ledges = hard & ~lines
    height, width = upright.shape
    runs = cv2.morphologyEx(upright.astype(np.uint8), cv2.MORPH_OPEN, np.ones((_SIDE_MIN_PX, 1), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(cv2.dilate(runs, np.ones((1, 3), np.uint8)))
    sides = [
        (stats[n, cv2.CC_STAT_LEFT] + stats[n, cv2.CC_STAT_WIDTH] / 2, stats[n, cv2.CC_STAT_TOP],
         stats[n, cv2.CC_STAT_TOP] + stats[n, cv2.CC_STAT_HEIGHT])
        for n in range(1, count) if stats[n, cv2.CC_STAT_HEIGHT] >= _SIDE_MIN_PX
    ]
    best: tuple[float, Box] | None = None
    for xa, top_a, bottom_a in sides:
        for xb, top_b, bottom_b in sides:
            gap = xb - xa
            overlap = min(bottom_a, bottom_b) - max(top_a, top_b)
            if not _VEHICLE_WIDTH[0] * width <= gap <= _VEHICLE_WIDTH[1] * width:
                continue
            if overlap < _SIDE_OVERLAP * min(bottom_a - top_a, bottom_b - top_b):
                continue
            top, bottom = min(top_a, top_b), max(bottom_a, bottom_b)
            x0, x1 = round(xa), round(xb)
            if top > 2:
                rows = slice(max(0, top - 3), top + 4)
                if hard[rows, x0:x1].any(axis=0).mean() < _ROOF_SHARE or _hangs(ledges[rows], x0, x1):
                    continue
            # The vehicle is the largest such box (a plume's upright flanks are closer).
            if best is None or overlap * gap > best[0]:
                best = (overlap * gap, (x0, top, x1 - x0, bottom - top))
    return None if best is None else best[1]


def _hangs(rows: np.ndarray, x0: int, x1: int) -> bool:
    """Whether the top edge of a box runs on past both its corners.

    A roof ends at the corners; a box hanging from a wider hard edge is something under it
    (a crisp plume under the bumper), not the vehicle. ``rows`` are the hard edges around
    the top, without those that cross the frame.
    """
    reach = max(_SIDE_MIN_PX, round(_LEDGE_REACH * (x1 - x0)))
    left = rows[:, max(0, x0 - reach) : max(0, x0 - _HARD_BAND_PX)]
    right = rows[:, x1 + _HARD_BAND_PX : x1 + reach]
    if not left.size or not right.size:
        return False
    return min(float(left.any(axis=0).mean()), float(right.any(axis=0).mean())) > _ROOF_SHARE


def _slope(image: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=5)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=5)
    return cv2.magnitude(gx, gy) / _SOBEL_UNIT


def _find_plume(work: _Work, others: Sequence[_Work]) -> tuple[np.ndarray, float] | None:
    """The most plume-like dark component as a mask, with its hardness, or None.

    A crisp dense plume has as sharp an outline as a vehicle, so sharpness alone does not
    tell them apart: shape and place do. What lies on the vehicle's rear is the vehicle;
    a component beside the vehicle that does not reach below its rear is its shadow or a
    part of it (a plume trails behind the vehicle, towards the camera). Where no vehicle
    rear was found, a sharp component bounded by long straight edges (a vehicle body, a
    bumper, a cast shadow) is no plume; a soft one is a feathered plume whatever its shape.
    ``others`` are the passage's other frames: a dark region that stays unchanged while the
    vehicle moves on (a stain, a patch, the remnant of a shadow) is the road, not smoke,
    which trails the vehicle and churns.
    """
    candidates = (work.dark & ~work.hard).astype(np.uint8)
    vehicle = work.vehicle
    if vehicle is not None:
        # The rear, and right under it the wheels and the vehicle's own contact shadow.
        x, y, w, h = vehicle
        below = _HARD_BAND_PX + round(_UNDER_VEHICLE * w)
        candidates[max(0, y - _HARD_BAND_PX) : y + h + below, max(0, x - _HARD_BAND_PX) : x + w + _HARD_BAND_PX] = 0
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(candidates, connectivity=4)
    # Give each component back the rim the hard-edge band cut off: a small crisp plume is
    # mostly rim.
    grown = np.where(labels > 0, labels, cv2.dilate(labels.astype(np.float32), _disc(2 * _HARD_BAND_PX + 1)))
    grown = np.where(work.dark, grown, 0).astype(np.int32)
    min_area = _MIN_AREA_FRACTION * candidates.size
    height, width = candidates.shape
    best: tuple[float, np.ndarray, float] | None = None
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_WIDTH] >= _SPAN_FRACTION * width:
            continue  # a band across the frame is background, never smoke
        trailing = True
        if vehicle is not None:
            if centroids[label][1] < vehicle[1] + vehicle[3] or _under(stats[label], vehicle):
                continue  # beside, above or flat under the vehicle's rear: not trailing it
            # Reaching well behind the vehicle, it trails it whatever its outline.
            trailing = stats[label, cv2.CC_STAT_TOP] + stats[label, cv2.CC_STAT_HEIGHT] > (
                vehicle[1] + vehicle[3] + _TRAIL_REACH * vehicle[2]
            )
        mask = grown == label
        area = int(mask.sum())
        if area < min_area:
            continue
        hardness = _hardness(mask, work.hard)
        if hardness > _MAX_HARDNESS and not (vehicle is not None and trailing) and _straight_edged(mask):
            continue
        if any(_static(mask, work, other) for other in others):
            continue
        darkness = float(1.0 - work.ratio[mask].mean())
        score = area * darkness * (1.0 - 0.5 * hardness)
        if best is None or score > best[0]:
            best = (score, mask, hardness)
    return None if best is None else (best[1], best[2])


def _static(mask: np.ndarray, work: _Work, other: _Work) -> bool:
    """Whether the region looks the same in the other frame (it did not move or change)."""
    same = np.abs(work.ratio[mask] - other.ratio[mask]) < _STATIC_DIFFERENCE
    return float(same.mean()) >= _STATIC_SHARE


def _under(stats: np.ndarray, vehicle: Box) -> bool:
    """A flat strip right under the vehicle's rear, no wider than it: bumper, wheels, shadow."""
    x, y, w, h = vehicle
    left, top = stats[cv2.CC_STAT_LEFT], stats[cv2.CC_STAT_TOP]
    width, height = stats[cv2.CC_STAT_WIDTH], stats[cv2.CC_STAT_HEIGHT]
    return bool(
        height < _STRIP_ASPECT * width and top < y + h + _TRAIL_REACH * w
        and left >= x - _STRIP_MARGIN * w and left + width <= x + w + _STRIP_MARGIN * w
    )


def _straight_edged(mask: np.ndarray) -> bool:
    """Whether most of the component's outline runs in long straight lines.

    A vehicle body, a bumper, a window or the shadow the vehicle casts is bounded by
    straight edges; a plume's outline is curved. The outline is simplified to within
    ``_STRAIGHT_TOLERANCE_PX`` and the segments at least ``_STRAIGHT_MIN_PX`` long are
    counted (a circle's chords stay shorter than that unless its radius exceeds
    ``_STRAIGHT_MIN_PX ** 2 / (8 * _STRAIGHT_TOLERANCE_PX)``, about 50 px, more than a
    plume's). The frame's own border, where a component is cut off, does not count.
    """
    height, width = mask.shape
    contour = _outline(mask)  # holes (a window, a number plate) do not change the shape
    polygon = cv2.approxPolyDP(contour, _STRAIGHT_TOLERANCE_PX, True)[:, 0, :].astype(np.float32)
    following = np.roll(polygon, -1, axis=0)
    lengths = np.linalg.norm(polygon - following, axis=1)
    on_border = ((polygon[:, 0] <= 1) & (following[:, 0] <= 1)) | ((polygon[:, 1] <= 1) & (following[:, 1] <= 1)) | (
        (polygon[:, 0] >= width - 2) & (following[:, 0] >= width - 2)) | (
        (polygon[:, 1] >= height - 2) & (following[:, 1] >= height - 2))
    inner = lengths[~on_border]
    return float(inner[inner >= _STRAIGHT_MIN_PX].sum()) >= _STRAIGHT_SHARE * max(float(inner.sum()), 1.0)


def _outline(mask: np.ndarray) -> np.ndarray:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    return max(contours, key=cv2.contourArea)


def _hardness(mask: np.ndarray, hard: np.ndarray) -> float:
    """Share of the component's outer outline lying on hard edges (1: camera-sharp all round)."""
    # Holes (lane markings seen through smoke, noise specks) are not part of the outline.
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = cv2.drawContours(np.zeros(mask.shape, np.uint8), contours, -1, 1, cv2.FILLED)
    outline = (cv2.dilate(filled, _disc(5)) > 0) & (filled == 0)
    return float(hard[outline].mean()) if outline.any() else 0.0


def _measure(work: _Work, mask: np.ndarray, hardness: float, step: float) -> RingelmannEstimate:
    ring = _ring(mask) & ~work.dark & ~work.hard
    if not ring.any():  # no road beside it (e.g. a black frame): nothing to compare with
        return RingelmannEstimate(0, 0.0, 0.0, None, None)
    # Ratios to the road model, not raw greys: the ring may cross a step the model follows.
    # The densest tenth of the core: a Ringelmann reading is of the plume's densest part.
    core = np.percentile(work.ratio[_core(mask)], (_DENSEST_PERCENTILE, *_QUARTILES))
    densest, plume = float(core[0]), core[1:]
    background = np.percentile(work.ratio[ring], _QUARTILES)
    blackness = min(1.0, max(0.0, 1.0 - densest / max(float(background[1]), 1e-3)))
    level = min(MAX_LEVEL, math.floor(blackness / step + 0.5))
    confidence = _confidence(plume, background, mask, hardness)
    # The region stops at the hard-edge band; widen it back to the outline a person sees.
    region = (cv2.dilate(mask.astype(np.uint8), _disc(_HARD_BAND_PX)) > 0) & ~ring
    return RingelmannEstimate(
        level, blackness, confidence, _box(region, work.scale), _box(ring, work.scale), _polygon(region, work.scale)
    )


def _core(mask: np.ndarray) -> np.ndarray:
    # The thickest half of the region: its grey is not lightened by the feathered rim.
    # Where the plume merged with a dark vehicle, the plume is usually the thicker part.
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 3)
    return inside >= max(1.0, 0.5 * float(inside.max()))


def _ring(mask: np.ndarray) -> np.ndarray:
    # Road just outside the region, past the feather.
    outside = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)
    return (outside > _RING_GAP_PX) & (outside <= _RING_GAP_PX + _RING_WIDTH_PX)


def _confidence(plume: np.ndarray, background: np.ndarray, mask: np.ndarray, hardness: float) -> float:
    """Higher for a large, soft-edged region whose contrast stands well above the spread.

    ``plume`` and ``background`` are quartiles of the ratio to the road model; the
    interquartile range / 1.349 is a robust standard deviation.
    """
    size = min(1.0, float(mask.sum()) / (_CONFIDENT_AREA_FRACTION * mask.size))
    contrast = max(0.0, float(background[1] - plume[1]))
    spread = float(plume[2] - plume[0] + background[2] - background[0]) / 1.349
    snr = contrast / (spread + _RATIO_FLOOR)
    return size * (1.0 - 0.5 * hardness) * snr / (snr + 1.0)


def _polygon(region: np.ndarray, scale: float) -> list[list[int]]:
    """A simplified outline of the region, in original image pixels, at most ~64 points."""
    contour = _outline(region)
    tolerance = 0.5
    polygon = cv2.approxPolyDP(contour, tolerance, True)
    while len(polygon) > _OUTLINE_MAX_POINTS:
        tolerance *= 1.5
        polygon = cv2.approxPolyDP(contour, tolerance, True)
    return [[round(float(x) * scale), round(float(y) * scale)] for x, y in polygon[:, 0, :]]


def _box(mask: np.ndarray, scale: float) -> Box:
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return round(x * scale), round(y * scale), round(w * scale), round(h * scale)


def _disc(diameter: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
