"""Verification of uploaded camera images.

File names and declared content types are never trusted: the format is sniffed from the
magic bytes and the dimensions are read from the header before anything is decoded, so an
oversized or bomb-like image is refused for the price of reading a few hundred bytes.
Only then is the image fully decoded, which catches truncated and corrupt files.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

ImageFormat = Literal["jpeg", "png"]

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Image formats we recognise but do not accept, so the client gets a precise error.
_OTHER_IMAGE_MAGICS = (b"GIF87a", b"GIF89a", b"II*\x00", b"MM\x00*", b"\x00\x00\x00\x0cjP  ")
_BMP_DIB_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
# SOFn frame headers: every SOF except DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# Markers without a length field (TEM, RST0-7).
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# Reaching image data (SOS), the end (EOI), a second SOI or a stuffed byte before any
# SOFn means there is no usable frame header.
_JPEG_NO_FRAME = frozenset({0xDA, 0xD9, 0xD8, 0x00})
# Every 8x8 block of a JPEG scan costs at least a bit or two (its DC code and end of block),
# so a file with fewer than one bit per block of its declared frame has a header that claims
# more pixels than its data holds; libjpeg would fill the rest in grey, at full size.
_JPEG_MIN_BITS_PER_BLOCK = 1


class ImageRejected(ValueError):
    """An upload that is not an acceptable image; ``code`` is the API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ImageInfo:
    format: ImageFormat
    width: int
    height: int
    sha256: str
    size_bytes: int

    @property
    def media_type(self) -> str:
        """The content type to serve the image with, from the sniffed format."""
        return f"image/{self.format}"


def inspect_image(data: bytes, *, max_bytes: int, max_side_px: int) -> ImageInfo:
    """Verify ``data`` is a decodable JPEG or PNG within the limits, cheapest checks first."""
    if len(data) > max_bytes:
        raise ImageRejected("image_too_large", f"image is {len(data)} bytes, at most {max_bytes} allowed")
    fmt = _sniff(data)
    width, height = _jpeg_size(data) if fmt == "jpeg" else _png_size(data)
    if width == 0 or height == 0:
        raise ImageRejected("image_corrupt", "image header declares a zero dimension")
    if max(width, height) > max_side_px:
        raise ImageRejected(
            "image_dimensions_too_large", f"image is {width}x{height} px, at most {max_side_px} px a side allowed"
        )
    if fmt == "jpeg" and len(data) * 8 < _JPEG_MIN_BITS_PER_BLOCK * (width * height // 64):
        raise ImageRejected(
            "image_corrupt", f"JPEG header declares {width}x{height} px, more than its {len(data)} bytes of data hold"
        )
    # Ignore EXIF orientation so the decoded shape must match the header exactly.
    decoded = _imdecode(data, cv2.IMREAD_GRAYSCALE | cv2.IMREAD_IGNORE_ORIENTATION)
    if decoded is None or decoded.shape != (height, width):
        raise ImageRejected("image_corrupt", "image data is truncated or corrupt")
    return ImageInfo(fmt, width, height, hashlib.sha256(data).hexdigest(), len(data))


def decode_grey(data: bytes) -> np.ndarray:
    """Decode an already inspected image to uint8 grey, EXIF orientation applied."""
    grey = _imdecode(data, cv2.IMREAD_GRAYSCALE)
    if grey is None:
        raise ImageRejected("image_corrupt", "image data is truncated or corrupt")
    return grey


def _imdecode(data: bytes, flags: int) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)


def _sniff(data: bytes) -> ImageFormat:
    if data.startswith(_JPEG_MAGIC):
        return "jpeg"
    if data.startswith(_PNG_MAGIC):
        return "png"
    is_riff_webp = data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    is_iso_bmff = data[4:8] == b"ftyp"  # HEIC, AVIF
    # "BM" alone is too weak a signature: text may start with it.
    is_bmp = data[:2] == b"BM" and int.from_bytes(data[14:18], "little") in _BMP_DIB_HEADER_SIZES
    if data.startswith(_OTHER_IMAGE_MAGICS) or is_riff_webp or is_iso_bmff or is_bmp:
        raise ImageRejected("unsupported_format", "only JPEG and PNG images are accepted")
    raise ImageRejected("not_an_image", "file is not an image")


def _png_size(data: bytes) -> tuple[int, int]:
    # The PNG spec requires IHDR (13 bytes of data) as the first chunk.
    header = data[8:33]
    if len(header) < 25 or header[:8] != b"\x00\x00\x00\x0dIHDR":
        raise ImageRejected("image_corrupt", "PNG has no valid IHDR header")
    (crc,) = struct.unpack(">I", header[21:25])
    if zlib.crc32(header[4:21]) != crc:
        raise ImageRejected("image_corrupt", "PNG IHDR checksum mismatch")
    width, height = struct.unpack(">II", header[8:16])
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the marker segments after SOI up to the first SOFn frame header."""
    pos = 2
    while True:
        if pos >= len(data) or data[pos] != 0xFF:
            raise ImageRejected("image_corrupt", "JPEG marker structure is broken or truncated")
        while pos < len(data) and data[pos] == 0xFF:  # fill bytes may precede any marker
            pos += 1
        if pos >= len(data):
            raise ImageRejected("image_corrupt", "JPEG is truncated before its frame header")
        marker = data[pos]
        pos += 1
        if marker in _JPEG_STANDALONE:
            continue
        if marker in _JPEG_NO_FRAME:
            raise ImageRejected("image_corrupt", "JPEG has no frame header")
        if pos + 2 > len(data):
            raise ImageRejected("image_corrupt", "JPEG is truncated before its frame header")
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        if marker in _JPEG_SOF:
            if length < 8 or pos + 7 > len(data):
                raise ImageRejected("image_corrupt", "JPEG frame header is truncated")
            height, width = struct.unpack(">HH", data[pos + 3 : pos + 7])
            return width, height
        if length < 2:
            raise ImageRejected("image_corrupt", "JPEG segment length is invalid")
        pos += length
