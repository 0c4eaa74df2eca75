"""Ringelmann estimate (0..5) of an exhaust plume in a roadside black-smoke snapshot.

Method (details and limits in docs/ringelmann.md):

1. Work on a copy downscaled to ``WORK_WIDTH`` px. A small median and an adaptive blur
   suppress sensor noise and JPEG blocking; a grey opening removes thin bright details
   (lane markings, glints) so they neither hide smoke nor cut it apart.
2. Model the bare road: a quadratic surface fitted to coarse tile means, iteratively
   ignoring tiles far from it (vehicle, plume), refined by the residual of the road tiles
   around each point, so uneven lighting is followed without following the plume.
3. Pixels darker than the model by more than half a Ringelmann step are candidates.
   Hard (camera-sharp) edges are outlines of opaque objects such as the vehicle body; a
   plume's edges are feathered. Hard edges cut candidates apart, components whose outline
   is almost all hard are dropped, and the largest, darkest, softest remaining one is the
   plume.
4. Blackness = 1 - plume grey / background grey: the plume grey is the median over the
   component's core (its thickest half, clear of the feathered rim), the background grey
   the median over a band of road just outside it (past the feather, excluding other dark
   objects and hard edges). Level = round(blackness / step), clamped to 0..5.

The estimate orders the review queue; a person confirms the level.
"""

from __future__ import annotations

import math
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
_COARSE_SIGMA = 8.0
_EDGE_MIN_CONTRAST = 0.15  # relative grey step below which an edge does not matter
_HARD_SLOPE_RATIO = 1.7  # fine / coarse slope: ~2.3 and up for a camera-sharp step, ~1.3 for smoke
_MIN_AREA_FRACTION = 0.01
_MAX_HARDNESS = 0.85  # a plume merged with a dark vehicle still shows a soft part
_RING_GAP_PX, _RING_WIDTH_PX = 8, 12
_QUARTILES = (25, 50, 75)

_threads_limited = False


@dataclass(frozen=True)
class RingelmannEstimate:
    level: int
    blackness: float
    confidence: float
    plume_box: Box | None  # x, y, w, h in original image pixels
    background_box: Box | None

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


def estimate_from_bytes(data: bytes, step: float = 0.2) -> RingelmannEstimate:
    """Decode an inspected JPEG or PNG and estimate its Ringelmann level."""
    return estimate_ringelmann(decode_grey(data), step)


def estimate_ringelmann(grey: np.ndarray, step: float = 0.2) -> RingelmannEstimate:
    """Estimate the Ringelmann level of the plume in a 2-D uint8 grey snapshot.

    ``step`` is the blackness of one Ringelmann level (policy; 0.2 by the standard).
    """
    if grey.ndim != 2 or grey.dtype != np.uint8:
        raise ValueError("expected a 2-D uint8 grey image")
    _limit_threads()
    work = _prepare(grey, dark_margin=step / 2)
    plume = _find_plume(work)
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
    ratio = flat / np.maximum(_road_model(flat), 1.0)
    return _Work(scale, flat, ratio, ratio < 1.0 - dark_margin, _hard_edges(ratio))


def _blur_sigma(small: np.ndarray) -> float:
    """Blur enough to bring sensor noise well under the contrast of a plume edge."""
    # Immerkaer's estimate: this Laplacian-difference kernel cancels smooth image content.
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    laplacian = cv2.filter2D(small, cv2.CV_16S, kernel)
    noise = math.sqrt(math.pi / 2) / 6 * cv2.norm(laplacian, cv2.NORM_L1) / laplacian.size
    relative = noise / max(cv2.mean(small)[0], 1.0)
    return min(_MAX_BLUR_SIGMA, max(_MIN_BLUR_SIGMA, relative / _TARGET_NOISE))


def _road_model(flat: np.ndarray) -> np.ndarray:
    """The grey each pixel would have if nothing stood on the road."""
    height, width = flat.shape
    tile = max(2, width // _TILES_ACROSS)
    grid_w, grid_h = max(1, width // tile), max(1, height // tile)
    grid = cv2.resize(flat, (grid_w, grid_h), interpolation=cv2.INTER_AREA).astype(np.float64)
    fit, road_tiles = _robust_quadratic(grid)
    # Follow local lighting where road tiles are seen; fall back to the surface elsewhere.
    weight = road_tiles.astype(np.float64)
    local = cv2.GaussianBlur(weight * grid / fit, (0, 0), _LOCAL_SIGMA_TILES) + _FALLBACK_WEIGHT
    support = cv2.GaussianBlur(weight, (0, 0), _LOCAL_SIGMA_TILES) + _FALLBACK_WEIGHT
    model = (fit * local / support).astype(np.float32)
    return cv2.resize(model, (width, height), interpolation=cv2.INTER_LINEAR)


def _robust_quadratic(grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A quadratic surface through the grid, refitted without outlying tiles; and the inliers."""
    grid_h, grid_w = grid.shape
    y, x = np.mgrid[-1.0 : 1.0 : grid_h * 1j, -1.0 : 1.0 : grid_w * 1j]
    design = np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], axis=-1).reshape(-1, 6)
    values = grid.ravel()
    inliers = np.ones(values.size, dtype=bool)
    for _ in range(_FIT_ROUNDS):
        coef, *_ = np.linalg.lstsq(design[inliers], values[inliers], rcond=None)
        residual = values - design @ coef
        sigma = max(1.4826 * float(np.median(np.abs(residual[inliers]))), 0.5)
        # Dark objects are what we look for, so clip them harder than bright ones.
        inliers = (residual > -_FIT_CLIP_SIGMA * sigma) & (residual < 2 * _FIT_CLIP_SIGMA * sigma)
    fit = np.maximum((design @ coef).reshape(grid_h, grid_w), 1.0)
    return fit, inliers.reshape(grid_h, grid_w)


def _hard_edges(ratio: np.ndarray) -> np.ndarray:
    """Sharp transitions of real contrast, dilated into a band.

    A step blurred by sigma has a peak slope proportional to 1/sigma. Blurring further by
    ``_COARSE_SIGMA`` barely lowers the slope of a wide (feathered) step but divides that
    of a narrow one, so the ratio of the two slopes tells object outlines from smoke.
    """
    height, width = ratio.shape
    # The coarse blur runs at half size: same result for a smooth image, a quarter the cost.
    half = cv2.resize(ratio, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA)
    half = cv2.GaussianBlur(half, (0, 0), _COARSE_SIGMA / 2)
    coarse = cv2.resize(half, (width, height), interpolation=cv2.INTER_LINEAR)
    fine_slope, coarse_slope = _slope(ratio), _slope(coarse)
    min_slope = _EDGE_MIN_CONTRAST / (math.sqrt(2 * math.pi) * _COARSE_SIGMA)
    hard = (coarse_slope > min_slope) & (fine_slope > _HARD_SLOPE_RATIO * coarse_slope)
    return cv2.dilate(hard.astype(np.uint8), _disc(3)) > 0


def _slope(image: np.ndarray) -> np.ndarray:
    gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=5)
    gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=5)
    return cv2.magnitude(gx, gy) / 128.0  # Sobel 5x5 weighs a unit slope as 128


def _find_plume(work: _Work) -> tuple[np.ndarray, float] | None:
    """The best soft-edged dark component as a mask, with its hardness, or None."""
    candidates = (work.dark & ~work.hard).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(candidates, connectivity=4)
    min_area = _MIN_AREA_FRACTION * candidates.size
    best: tuple[float, np.ndarray, float] | None = None
    for label in range(1, count):
        if stats[label, cv2.CC_STAT_AREA] < min_area:
            continue
        mask = labels == label
        hardness = _hardness(mask, work.hard)
        if hardness > _MAX_HARDNESS:
            continue
        darkness = float(1.0 - work.ratio[mask].mean())
        score = stats[label, cv2.CC_STAT_AREA] * darkness * (1.0 - hardness)
        if best is None or score > best[0]:
            best = (score, mask, hardness)
    return None if best is None else (best[1], best[2])


def _hardness(mask: np.ndarray, hard: np.ndarray) -> float:
    """Share of the component's outer outline lying on hard edges (1: an opaque object)."""
    # Holes (lane markings seen through smoke, noise specks) are not part of the outline.
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = cv2.drawContours(np.zeros(mask.shape, np.uint8), contours, -1, 1, cv2.FILLED)
    outline = (cv2.dilate(filled, _disc(5)) > 0) & (filled == 0)
    return float(hard[outline].mean()) if outline.any() else 0.0


def _measure(work: _Work, mask: np.ndarray, hardness: float, step: float) -> RingelmannEstimate:
    ring = _ring(mask) & ~work.dark & ~work.hard
    if not ring.any():  # no road beside it (e.g. a black frame): nothing to compare with
        return RingelmannEstimate(0, 0.0, 0.0, None, None)
    plume = np.percentile(work.flat[_core(mask)], _QUARTILES)
    background = np.percentile(work.flat[ring], _QUARTILES)
    blackness = min(1.0, max(0.0, 1.0 - float(plume[1]) / max(float(background[1]), 1.0)))
    level = min(MAX_LEVEL, math.floor(blackness / step + 0.5))
    confidence = _confidence(plume, background, mask, hardness)
    return RingelmannEstimate(level, blackness, confidence, _box(mask, work.scale), _box(ring, work.scale))


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
    """Higher for a large, soft-edged region whose contrast stands well above the grey spread.

    ``plume`` and ``background`` are grey quartiles; the interquartile range / 1.349 is a
    robust standard deviation.
    """
    size = min(1.0, float(mask.sum()) / (4 * _MIN_AREA_FRACTION * mask.size))
    contrast = max(0.0, float(background[1] - plume[1]))
    spread = float(plume[2] - plume[0] + background[2] - background[0]) / 1.349
    snr = contrast / (spread + 1.0)
    return size * (1.0 - hardness) * snr / (snr + 1.0)


def _box(mask: np.ndarray, scale: float) -> Box:
    x, y, w, h = cv2.boundingRect(mask.astype(np.uint8))
    return round(x * scale), round(y * scale), round(w * scale), round(h * scale)


def _disc(diameter: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (diameter, diameter))
