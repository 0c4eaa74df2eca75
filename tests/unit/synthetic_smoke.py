"""Synthetic black-smoke camera scenes with a plume of known blackness.

A scene is a road seen from behind and above a vehicle driving away: asphalt with a
brightness gradient and low-frequency texture, dashed lane markings in perspective, a dark
vehicle rear (body, window, bumper, lights, wheels) and, below it, a soft-edged plume that
darkens whatever it covers by ``blackness`` (plume grey = background grey * (1 - b)).
Optionally the background has a sharp step: a brighter sky above a horizon, or the
shadow band of an overpass across the road (it darkens the vehicle and plume under it too).
Camera degradations (gaussian noise, blur, JPEG re-compression) are applied last.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Scene:
    width: int = 960
    height: int = 540
    road_grey: float = 140.0
    vehicle_grey: float | None = None  # default: 40% of the road grey
    blackness: float = 0.0  # 0 renders no plume
    feather: float = 0.02  # plume edge blur, fraction of the width (0.002: a crisp fresh plume)
    horizon: float | None = None  # sky 1.6x brighter above this fraction of the height
    band: tuple[float, float, float] | None = None  # overpass shadow: top, bottom (of the height), darkening
    noise_sigma: float = 0.0
    blur_sigma: float = 0.0
    jpeg_quality: int | None = None
    seed: int = 0


def render(scene: Scene) -> np.ndarray:
    """The scene as uint8 grey, degradations included."""
    rng = np.random.default_rng(scene.seed)
    image = _road(scene, rng)
    _draw_lane_markings(image, scene)
    _draw_vehicle(image, scene)
    if scene.blackness > 0:
        image *= 1.0 - scene.blackness * plume_alpha(scene)
    if scene.horizon is not None:
        image[: int(scene.horizon * scene.height)] = min(250.0, 1.6 * scene.road_grey)
    if scene.band is not None:
        top, bottom, darkening = scene.band
        image[int(top * scene.height) : int(bottom * scene.height)] *= 1.0 - darkening
    return _degrade(image, scene, rng)


def render_jpeg(scene: Scene, quality: int = 90) -> bytes:
    """The rendered scene encoded as a JPEG file."""
    return encode_jpeg(render(scene), quality)


def encode_jpeg(grey: np.ndarray, quality: int) -> bytes:
    ok, buffer = cv2.imencode(".jpg", grey, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return buffer.tobytes()


def plume_alpha(scene: Scene) -> np.ndarray:
    """Plume opacity in 0..1: an exhaust cone widening into a cloud, feathered edges."""
    w, h = scene.width, scene.height
    mask = np.zeros((h, w), np.float32)
    exhaust = (int(0.58 * w), int(0.53 * h))
    cloud_centre = (int(0.52 * w), int(0.74 * h))
    cone = np.array([exhaust, (int(0.40 * w), int(0.70 * h)), (int(0.62 * w), int(0.72 * h))], np.int32)
    cv2.fillConvexPoly(mask, cone, 1.0)
    cv2.ellipse(mask, cloud_centre, (int(0.17 * w), int(0.15 * h)), -8, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), scene.feather * w)


def plume_box(scene: Scene) -> Box:
    """Bounding box (x, y, w, h) of the half-opaque plume, the truth for box checks."""
    ys, xs = np.nonzero(plume_alpha(scene) >= 0.5)
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def _road(scene: Scene, rng: np.random.Generator) -> np.ndarray:
    w, h = scene.width, scene.height
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    # Farther asphalt (top) looks lighter; sunlight falls off to one side.
    shading = 1.0 - 0.10 * y + 0.05 * x
    coarse_noise = rng.normal(0.0, 1.0, (h // 16, w // 16)).astype(np.float32)
    texture = cv2.resize(coarse_noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return scene.road_grey * shading * (1.0 + 0.04 * texture)


def _draw_lane_markings(image: np.ndarray, scene: Scene) -> None:
    w, h = scene.width, scene.height
    vanishing = np.array([0.5 * w, -0.6 * h])
    marking = min(250.0, scene.road_grey + 90.0)
    for bottom_x in (-0.05 * w, 0.30 * w, 0.70 * w, 1.05 * w):
        direction = np.array([bottom_x, float(h)]) - vanishing
        for start in np.arange(0.35, 1.0, 0.078):  # dashes in perspective, from mid-frame down
            a, b = vanishing + direction * start, vanishing + direction * (start + 0.052)
            thickness = max(2, int(0.012 * w * (a[1] / h + 0.3)))  # nearer is wider
            cv2.line(image, tuple(a.astype(int)), tuple(b.astype(int)), marking, thickness, cv2.LINE_AA)


def _draw_vehicle(image: np.ndarray, scene: Scene) -> None:
    w, h = scene.width, scene.height
    body = scene.vehicle_grey if scene.vehicle_grey is not None else 0.4 * scene.road_grey

    def rect(x0: float, y0: float, x1: float, y1: float, grey: float) -> None:
        cv2.rectangle(image, (int(x0 * w), int(y0 * h)), (int(x1 * w), int(y1 * h)), grey, -1)

    rect(0.37, 0.45, 0.41, 0.56, 18.0)  # wheels
    rect(0.59, 0.45, 0.63, 0.56, 18.0)
    rect(0.36, 0.16, 0.64, 0.52, body)
    rect(0.39, 0.19, 0.61, 0.30, 0.6 * body)  # rear window
    rect(0.37, 0.36, 0.41, 0.40, min(255.0, body + 60.0))  # tail lights
    rect(0.59, 0.36, 0.63, 0.40, min(255.0, body + 60.0))
    rect(0.46, 0.40, 0.54, 0.44, 200.0)  # number plate
    rect(0.36, 0.48, 0.64, 0.52, 0.8 * body)  # bumper


def _degrade(image: np.ndarray, scene: Scene, rng: np.random.Generator) -> np.ndarray:
    if scene.blur_sigma > 0:
        image = cv2.GaussianBlur(image, (0, 0), scene.blur_sigma)
    if scene.noise_sigma > 0:
        image = image + rng.normal(0.0, scene.noise_sigma, image.shape).astype(np.float32)
    grey = np.clip(image + 0.5, 0, 255).astype(np.uint8)
    if scene.jpeg_quality is not None:
        grey = cv2.imdecode(np.frombuffer(encode_jpeg(grey, scene.jpeg_quality), np.uint8), cv2.IMREAD_GRAYSCALE)
    return grey
