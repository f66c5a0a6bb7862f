"""Untrusted photo uploads made safe to keep and show: the format is decided by the bytes (never by the file name or
the declared content type), and every photo is decoded and re-encoded upright with no EXIF, XMP, ICC profile or
comment, so a citizen's GPS position, camera serial number or editing history never leaves with it."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from service.errors import InvalidInputError

FIELD: Final = "photos"
MAX_BYTES: Final = 8 * 1024 * 1024
# a decompression bomb is a small file whose header promises a huge canvas; 40 megapixels covers every phone camera
MAX_PIXELS: Final = 40_000_000
MAX_COUNT: Final = 9

# Pillow's format names: the only formats accepted, and the only decoders an upload is ever handed to
ALLOWED: Final = frozenset({"JPEG", "PNG", "WEBP"})
_DECODERS: Final = ("JPEG", "PNG", "WEBP")
# MPO is the multi-picture JPEG phones write for portrait and 3D shots; Pillow's JPEG decoder reports it as MPO.
# It is written back as a plain JPEG of its first picture.
_OUTPUT: Final = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}
CONTENT_TYPES: Final = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS: Final = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
# the modes PNG stores as they are: no colour or bit depth is lost re-encoding a PNG (16-bit grey stays 16-bit)
_PNG_MODES: Final = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"})
_SAVE_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "JPEG": {"quality": 85, "optimize": True},
    "PNG": {"optimize": True},
    "WEBP": {"quality": 85, "method": 4},
}
_UNSUPPORTED: Final = "照片格式不支持：只接受 JPEG、PNG 或 WebP 图片（按文件内容判断，与文件名无关）"
_DAMAGED: Final = "照片文件已损坏或不完整，无法读取，请重新拍摄或上传"


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int
    sha256: str


def clean_photo(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> CleanPhoto:
    """The photo re-encoded upright and without metadata, in its own format; InvalidInputError("photos") when the
    bytes are not a whole JPEG, PNG or WebP image within the limits."""
    _check_bytes(data, max_bytes)
    image, detected = _decoded(data, max_pixels)
    out = _OUTPUT[detected]
    bare = _stripped(image, out)
    encoded = _encoded(bare, out)
    return CleanPhoto(
        data=encoded,
        content_type=CONTENT_TYPES[out],
        extension=EXTENSIONS[out],
        width=bare.width,
        height=bare.height,
        sha256=hashlib.sha256(encoded).hexdigest(),
    )


def check_count(count: int, *, max_count: int = MAX_COUNT, min_count: int = 0) -> None:
    """Refuse too many (or, when an action needs evidence, too few) photos in one action, before any is decoded."""
    if count > max_count:
        raise InvalidInputError(FIELD, f"照片最多 {max_count} 张，本次提交了 {count} 张")
    if count < min_count:
        raise InvalidInputError(FIELD, f"至少需要上传 {min_count} 张照片，本次提交了 {count} 张")


def _check_bytes(data: bytes, max_bytes: int) -> None:
    if not data:
        raise InvalidInputError(FIELD, "照片是空文件，请重新选择图片")
    if len(data) > max_bytes:
        raise InvalidInputError(FIELD, f"照片太大：{_bytes_text(len(data))}，每张最多 {_bytes_text(max_bytes)}")


def _decoded(data: bytes, max_pixels: int) -> tuple[Image.Image, str]:
    probe = _opened(data, max_pixels)
    with _damaged_refused():
        # PNG: checks every chunk's CRC; JPEG and WebP check little here, the full decode below catches the rest
        probe.verify()
    image = _opened(data, max_pixels)  # after verify() Pillow needs the file opened again
    with _damaged_refused():
        image.load()  # decodes every pixel: a truncated file fails here
    return _upright(image), str(image.format)


def _opened(data: bytes, max_pixels: int) -> Image.Image:
    """Open from the header alone: the format from the content, and the canvas size checked before any decoding."""
    try:
        image = Image.open(io.BytesIO(data), formats=_DECODERS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own process-wide guard (Image.MAX_IMAGE_PIXELS) fired before ours could
        raise InvalidInputError(FIELD, f"照片像素过多，每张最多 {_pixels_text(max_pixels)}像素") from exc
    except UnidentifiedImageError as exc:
        raise InvalidInputError(FIELD, _UNSUPPORTED) from exc
    except Exception as exc:  # a damaged header fails in any of Pillow's parsers, with any exception type
        raise InvalidInputError(FIELD, _DAMAGED) from exc
    if image.format not in _OUTPUT:  # cannot happen with formats=_DECODERS; a guard should Pillow ever widen them
        raise InvalidInputError(FIELD, _UNSUPPORTED)
    width, height = image.size
    if width * height > max_pixels:
        raise InvalidInputError(
            FIELD, f"照片像素过多：{width}×{height}，每张最多 {_pixels_text(max_pixels)}像素，请缩小后再上传"
        )
    return image


@contextmanager
def _damaged_refused() -> Iterator[None]:
    try:
        yield
    except Exception as exc:  # decoders of untrusted bytes fail with OSError, SyntaxError, ValueError, struct.error…
        raise InvalidInputError(FIELD, _DAMAGED) from exc


def _upright(image: Image.Image) -> Image.Image:
    """Turn the pixels as the EXIF orientation says, since the tag that told viewers to do so is about to go."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF is common from cheap cameras: the pixels are good, only the turn is lost
        return image


def _stripped(image: Image.Image, out: str) -> Image.Image:
    """The pixels alone, in a mode `out` stores; of `info` only PNG transparency (part of the picture) is kept."""
    converted = _in_srgb(image).convert(_target_mode(image, out))  # always a new image: ours to change
    transparency = converted.info.get("transparency")
    # what Pillow writes unasked comes from `info` (JPEG comments, PNG ICC profiles): emptying it keeps them out
    converted.info = {}
    if out == "PNG" and transparency is not None:
        converted.info["transparency"] = transparency
    return converted


def _in_srgb(image: Image.Image) -> Image.Image:
    """Convert colours to sRGB while the ICC profile is still known, so dropping it does not shift them (iPhone
    photos are Display P3; CMYK JPEGs are unreadable without theirs)."""
    icc = image.info.get("icc_profile")
    if not icc or image.mode not in ("RGB", "RGBA", "CMYK"):
        return image
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        output_mode = "RGBA" if image.mode == "RGBA" else "RGB"
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=output_mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):  # a broken profile: keep the colours as they are
        return image
    return converted if converted is not None else image


def _target_mode(image: Image.Image, out: str) -> str:
    if out == "PNG" and image.mode in _PNG_MODES:
        return image.mode
    if out == "JPEG":
        return "L" if image.mode in ("1", "L") else "RGB"  # JPEG has no alpha; CMYK becomes RGB for browsers
    return "RGBA" if image.has_transparency_data else "RGB"


def _encoded(image: Image.Image, out: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, out, **_SAVE_OPTIONS[out])
    return buffer.getvalue()


def _bytes_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / 1024 / 1024:.1f}".removesuffix(".0") + " MB"
    if size >= 1024:
        return f"{size / 1024:.1f}".removesuffix(".0") + " KB"
    return f"{size} 字节"


def _pixels_text(pixels: int) -> str:
    return f"{pixels / 10_000:g} 万" if pixels >= 10_000 else f"{pixels} "
