from __future__ import annotations

import hashlib
import struct
import zlib

import cv2
import numpy as np
import pytest

from remote_sensing.images import ImageInfo, ImageRejected, decode_grey, inspect_image

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 8000


def _inspect(data: bytes, *, max_bytes: int = MAX_BYTES, max_side_px: int = MAX_SIDE) -> ImageInfo:
    return inspect_image(data, max_bytes=max_bytes, max_side_px=max_side_px)


def _rejected(data: bytes, **limits: int) -> str:
    with pytest.raises(ImageRejected) as caught:
        _inspect(data, **limits)
    return caught.value.code


def _encode(ext: str, width: int, height: int, channels: int = 1) -> bytes:
    gradient = np.tile(np.linspace(0, 255, width, dtype=np.uint8), (height, 1))
    image = gradient if channels == 1 else np.dstack([gradient] * channels)
    ok, buffer = cv2.imencode(ext, image)
    assert ok
    return buffer.tobytes()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def _jpeg_header(width: int, height: int, sof: int = 0xC0) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    # Fill bytes before the frame marker are legal and must be skipped.
    frame = b"\xff\xff\xff" + bytes([sof]) + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + frame + b"\xff\xd9"


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("the image was decoded")

    monkeypatch.setattr(cv2, "imdecode", refuse)


@pytest.mark.parametrize(
    ("ext", "fmt", "channels"), [(".jpg", "jpeg", 1), (".jpg", "jpeg", 3), (".png", "png", 1), (".png", "png", 3)]
)
def test_valid_images_are_accepted_with_their_dimensions(ext: str, fmt: str, channels: int) -> None:
    data = _encode(ext, 320, 200, channels)
    info = _inspect(data)
    assert info == ImageInfo(fmt, 320, 200, hashlib.sha256(data).hexdigest(), len(data))
    assert info.media_type == f"image/{fmt}"


def test_jpeg_size_is_found_past_other_segments() -> None:
    data = _encode(".jpg", 96, 64)
    exif = b"Exif\x00\x00" + bytes(300)
    with_exif = data[:2] + b"\xff\xe1" + struct.pack(">H", len(exif) + 2) + exif + data[2:]
    info = _inspect(with_exif)
    assert (info.width, info.height) == (96, 64)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"plate,speed\nA12345,48\n",
        b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n",
        b"BMW X5 with a full tank\n" * 4,
        b"\xff\xd8",  # a JPEG magic needs three bytes
    ],
)
def test_non_images_are_refused(data: bytes) -> None:
    assert _rejected(data) == "not_an_image"


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00;",
        b"RIFF\x24\x00\x00\x00WEBPVP8 ",
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00",
        b"BM" + bytes(12) + struct.pack("<I", 40) + bytes(40),
    ],
)
def test_other_image_formats_are_unsupported(data: bytes) -> None:
    assert _rejected(data) == "unsupported_format"


def test_too_many_bytes_are_refused_before_anything_else() -> None:
    assert _rejected(b"x" * 101, max_bytes=100) == "image_too_large"
    assert _rejected(_encode(".png", 64, 64), max_bytes=50) == "image_too_large"


@pytest.mark.usefixtures("no_decoding")
def test_png_header_claiming_huge_dimensions_is_refused_without_decoding() -> None:
    assert _rejected(_png_header(50_000, 50_000)) == "image_dimensions_too_large"


@pytest.mark.usefixtures("no_decoding")
@pytest.mark.parametrize("sof", [0xC0, 0xC2])
def test_jpeg_frame_claiming_huge_dimensions_is_refused_without_decoding(sof: int) -> None:
    assert _rejected(_jpeg_header(50_000, 50_000, sof)) == "image_dimensions_too_large"


@pytest.mark.usefixtures("no_decoding")
@pytest.mark.parametrize("data", [_png_header(0, 100), _png_header(100, 0), _jpeg_header(100, 0), _jpeg_header(0, 100)])
def test_zero_dimensions_are_refused(data: bytes) -> None:
    assert _rejected(data) == "image_corrupt"


def test_png_with_a_bad_header_checksum_is_refused() -> None:
    data = bytearray(_png_header(100, 100))
    data[29] ^= 0xFF
    assert _rejected(bytes(data)) == "image_corrupt"


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_truncated_images_are_refused(ext: str) -> None:
    data = _encode(ext, 640, 480, 3)
    assert _rejected(data[: len(data) // 2]) == "image_corrupt"


@pytest.mark.parametrize(
    "data", [b"\xff\xd8\xff\xe0\x00", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"\xff\xd8\xff\xda\x00\x08"]
)
def test_jpeg_cut_before_its_frame_header_is_refused(data: bytes) -> None:
    assert _rejected(data) == "image_corrupt"


def test_header_lying_about_real_dimensions_is_refused() -> None:
    data = bytearray(_encode(".png", 64, 64))
    data[16:24] = struct.pack(">II", 32, 32)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    assert _rejected(bytes(data)) == "image_corrupt"


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_image_exactly_at_the_max_side_is_accepted(ext: str) -> None:
    data = _encode(ext, MAX_SIDE, 16)
    assert _inspect(data).width == MAX_SIDE
    assert _rejected(data, max_side_px=MAX_SIDE - 1) == "image_dimensions_too_large"


def test_decode_grey_returns_uint8_grey() -> None:
    grey = decode_grey(_encode(".jpg", 120, 80, 3))
    assert grey.dtype == np.uint8
    assert grey.shape == (80, 120)


def test_decode_grey_refuses_garbage() -> None:
    with pytest.raises(ImageRejected) as caught:
        decode_grey(b"\xff\xd8\xff\xe0garbage")
    assert caught.value.code == "image_corrupt"


def _with_frame_size(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its SOF0 frame header claiming another size (the data is unchanged)."""
    sof = jpeg.index(b"\xff\xc0")
    return jpeg[: sof + 5] + struct.pack(">HH", height, width) + jpeg[sof + 9 :]


def test_a_jpeg_header_claiming_more_pixels_than_its_data_holds_is_refused():
    real = _encode(".jpg", 640, 480, channels=3)
    assert _inspect(real).width == 640
    bomb = _with_frame_size(real, 7999, 7999)
    with pytest.raises(ImageRejected) as caught:
        _inspect(bomb)
    assert caught.value.code == "image_corrupt" and "7999x7999" in str(caught.value)
