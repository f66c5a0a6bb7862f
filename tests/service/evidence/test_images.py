"""Photo cleaning on images built in memory: the format comes from the content, the metadata (GPS above all) never
survives, the picture comes out upright, and everything that is not a whole JPEG, PNG or WebP is refused."""

from __future__ import annotations

import hashlib
import io
import random
import struct
import warnings
import zlib

import pytest
from PIL import ExifTags, Image, ImageCms, PngImagePlugin

from service.errors import InvalidInputError
from service.evidence.images import ALLOWED, CleanPhoto, check_count, clean_photo

SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF><rdf:Description exif:GPSLatitude="31,14N"/></rdf:RDF></x:xmpmeta>'
# the JPEG segments a clean file may hold: JFIF header, tables, frame, scan — no APPn with EXIF, XMP, ICC; no comment
CLEAN_JPEG_MARKERS = {0xE0, 0xDB, 0xC4, 0xC0, 0xC1, 0xC2, 0xDD, 0xDA}
CLEAN_PNG_CHUNKS = {b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"}
CLEAN_WEBP_CHUNKS = {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


def _noise(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    bands = len(Image.new(mode, (1, 1)).getbands())
    return Image.frombytes(mode, size, random.Random(seed).randbytes(size[0] * size[1] * bands))


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.Model] = "Phone 15"
    exif[ExifTags.Base.Orientation] = orientation
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)  # 0x8825
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (31.0, 14.0, 2.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (121.0, 28.0, 7.5)
    return exif


def _jpeg_with_everything() -> bytes:
    """A phone photo's worth of metadata: EXIF with GPS, XMP, an ICC profile and a comment."""
    return _encode(
        _noise("RGB", (64, 48)), "JPEG", exif=_gps_exif(), xmp=XMP, icc_profile=SRGB_ICC, comment=b"shot at home"
    )


def _jpeg_markers(data: bytes) -> set[int]:
    markers: set[int] = set()
    position = 2  # after SOI
    while position < len(data):
        assert data[position] == 0xFF, f"not a marker at {position}"
        marker = data[position + 1]
        markers.add(marker)
        if marker == 0xDA:  # start of scan: entropy-coded data follows, no more headers
            return markers
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        position += 2 + length
    return markers


def _png_chunks(data: bytes) -> set[bytes]:
    chunks: set[bytes] = set()
    position = 8  # after the signature
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunks.add(data[position + 4 : position + 8])
        position += 12 + length
    return chunks


def _webp_chunks(data: bytes) -> set[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks: set[bytes] = set()
    position = 12
    while position < len(data):
        (length,) = struct.unpack("<I", data[position + 4 : position + 8])
        chunks.add(data[position : position + 4])
        position += 8 + length + (length & 1)
    return chunks


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header promises a canvas its few bytes never hold: the shape of a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _refused(data: bytes, **limits: int) -> InvalidInputError:
    with pytest.raises(InvalidInputError) as caught:
        clean_photo(data, **limits)
    assert caught.value.field == "photos"
    return caught.value


def _bands(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple), pixel
    return pixel


def _reopen(photo: CleanPhoto) -> Image.Image:
    image = Image.open(io.BytesIO(photo.data))
    image.load()
    return image


def test_gps_and_all_other_metadata_are_gone_from_a_jpeg() -> None:
    original = _jpeg_with_everything()
    before = Image.open(io.BytesIO(original))
    assert before.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == (31.0, 14.0, 2.5)
    assert {"exif", "xmp", "icc_profile", "comment"} <= set(before.info)

    photo = clean_photo(original)
    after = _reopen(photo)
    assert after.format == "JPEG" and photo.content_type == "image/jpeg" and photo.extension == "jpg"
    assert len(after.getexif()) == 0
    assert after.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    assert not {"exif", "xmp", "icc_profile", "comment"} & set(after.info)
    assert _jpeg_markers(photo.data) <= CLEAN_JPEG_MARKERS
    for trace in (b"Exif", b"PhoneMaker", b"adobe:ns:meta", b"ICC_PROFILE", b"shot at home"):
        assert trace not in photo.data


def test_metadata_is_gone_from_a_png() -> None:
    text = PngImagePlugin.PngInfo()
    text.add_text("Comment", "home address")
    text.add_itxt("XML:com.adobe.xmp", XMP.decode())
    original = _encode(_noise("RGB", (40, 30)), "PNG", exif=_gps_exif(), icc_profile=SRGB_ICC, pnginfo=text)
    assert {b"eXIf", b"iCCP", b"tEXt", b"iTXt"} <= _png_chunks(original)

    photo = clean_photo(original)
    assert photo.content_type == "image/png" and photo.extension == "png"
    assert _png_chunks(photo.data) <= CLEAN_PNG_CHUNKS
    assert len(_reopen(photo).getexif()) == 0


def test_metadata_is_gone_from_a_webp() -> None:
    original = _encode(_noise("RGB", (40, 30)), "WEBP", exif=_gps_exif(), icc_profile=SRGB_ICC, xmp=XMP)
    assert {b"EXIF", b"ICCP", b"XMP "} <= _webp_chunks(original)

    photo = clean_photo(original)
    assert photo.content_type == "image/webp" and photo.extension == "webp"
    assert _webp_chunks(photo.data) <= CLEAN_WEBP_CHUNKS
    assert len(_reopen(photo).getexif()) == 0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_an_orientation_6_photo_comes_out_upright(fmt: str) -> None:
    # stored 60×40 with a red top-left corner; orientation 6 tells viewers to turn it 90° clockwise
    stored = Image.new("RGB", (60, 40), (0, 0, 255))
    stored.paste((255, 0, 0), (0, 0, 15, 10))
    photo = clean_photo(_encode(stored, fmt, exif=_gps_exif(orientation=6)))
    upright = _reopen(photo).convert("RGB")
    assert (photo.width, photo.height) == (40, 60) == upright.size
    red, green, blue = _bands(upright, (35, 3))  # the red corner is now top right
    assert red > 200 and green < 60 and blue < 60
    assert _bands(upright, (3, 3))[2] > 200  # and top left is blue
    assert ExifTags.Base.Orientation not in upright.getexif()


@pytest.mark.parametrize(
    ("fmt", "mode", "content_type"),
    [("JPEG", "RGB", "image/jpeg"), ("PNG", "RGBA", "image/png"), ("WEBP", "RGB", "image/webp")],
)
def test_each_allowed_format_is_kept(fmt: str, mode: str, content_type: str) -> None:
    assert fmt in ALLOWED
    photo = clean_photo(_encode(_noise(mode, (33, 21)), fmt))
    after = _reopen(photo)
    assert after.format == fmt and photo.content_type == content_type
    assert (photo.width, photo.height) == after.size == (33, 21)
    assert photo.sha256 == hashlib.sha256(photo.data).hexdigest()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_cleaning_a_cleaned_photo_is_harmless(fmt: str) -> None:
    once = clean_photo(_encode(_noise("RGB", (50, 40)), fmt, exif=_gps_exif(orientation=8)))
    twice = clean_photo(once.data)
    assert (twice.width, twice.height) == (once.width, once.height) == (40, 50)  # turned once, not twice
    assert twice.content_type == once.content_type
    if fmt == "PNG":  # lossless: the second pass changes nothing at all
        assert twice.data == once.data and twice.sha256 == once.sha256


def test_png_transparency_and_palette_survive() -> None:
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0])
    palette.paste(1, (10, 0, 20, 20))
    photo = clean_photo(_encode(palette, "PNG", transparency=0))
    after = _reopen(photo)
    assert after.mode == "P"
    rgba = after.convert("RGBA")
    assert _bands(rgba, (0, 0))[3] == 0 and _bands(rgba, (15, 0)) == (0, 255, 0, 255)


def test_webp_alpha_survives() -> None:
    image = Image.new("RGBA", (20, 20), (0, 0, 255, 0))
    image.paste((0, 0, 255, 255), (10, 0, 20, 20))
    after = _reopen(clean_photo(_encode(image, "WEBP", lossless=True)))
    assert after.mode == "RGBA"
    assert _bands(after, (2, 2))[3] == 0 and _bands(after, (15, 2))[3] == 255


def test_sixteen_bit_grey_png_keeps_its_depth() -> None:
    photo = clean_photo(_encode(Image.new("I;16", (8, 8), 40_000), "PNG"))
    assert _reopen(photo).getpixel((0, 0)) == 40_000


def test_a_cmyk_jpeg_becomes_rgb() -> None:
    photo = clean_photo(_encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"))
    after = _reopen(photo)
    assert after.mode == "RGB"
    red, green, blue = _bands(after, (8, 8))
    assert red > 200 and green < 60 and blue < 60


def test_a_grey_jpeg_stays_grey() -> None:
    assert _reopen(clean_photo(_encode(_noise("L", (16, 16)), "JPEG"))).mode == "L"


def test_colours_survive_dropping_the_profile() -> None:
    photo = clean_photo(_encode(Image.new("RGB", (16, 16), (200, 120, 40)), "PNG", icc_profile=SRGB_ICC))
    after = _reopen(photo)
    assert "icc_profile" not in after.info
    assert all(abs(a - b) <= 2 for a, b in zip(_bands(after, (4, 4)), (200, 120, 40), strict=True))


def test_a_broken_profile_does_not_refuse_the_photo() -> None:
    photo = clean_photo(_encode(_noise("RGB", (16, 16)), "JPEG", icc_profile=b"not a profile" * 10))
    assert "icc_profile" not in _reopen(photo).info


def test_a_phone_mpo_is_kept_as_a_plain_jpeg() -> None:
    first, second = _noise("RGB", (40, 30), seed=1), _noise("RGB", (20, 10), seed=2)
    photo = clean_photo(_encode(first, "MPO", save_all=True, append_images=[second]))
    after = _reopen(photo)
    assert after.format == "JPEG" and after.size == (40, 30) and getattr(after, "n_frames", 1) == 1


def test_an_animated_png_keeps_only_its_first_frame() -> None:
    frames = [Image.new("RGB", (10, 10), colour) for colour in ("red", "green")]
    photo = clean_photo(_encode(frames[0], "PNG", save_all=True, append_images=frames[1:]))
    assert _png_chunks(photo.data) <= CLEAN_PNG_CHUNKS  # no acTL / fcTL / fdAT
    assert _reopen(photo).getpixel((5, 5)) == (255, 0, 0)


NOT_IMAGES = {
    "html-named-jpg": b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>",
    "svg-with-script": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script><rect width="9"/></svg>',
    "pdf": b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n",
    "zip": b"PK\x03\x04" + bytes(40),
    "random": random.Random(3).randbytes(2048),
}


@pytest.mark.parametrize("data", NOT_IMAGES.values(), ids=NOT_IMAGES.keys())
def test_what_is_not_an_image_is_refused(data: bytes) -> None:
    error = _refused(data)
    assert "JPEG、PNG 或 WebP" in error.message


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "ICO"])
def test_other_image_formats_are_refused(fmt: str) -> None:
    error = _refused(_encode(_noise("RGB", (16, 16)), fmt))
    assert "格式不支持" in error.message


def test_no_other_decoder_ever_sees_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIF, TIFF, EPS… parsers have had their share of security holes: an upload must never reach them
    Image.init()
    seen: list[str] = []
    for name, (_, accept) in list(Image.OPEN.items()):
        if name not in ALLOWED and name != "MPO":

            def spy(fp: object, filename: object, name: str = name) -> Image.Image:
                seen.append(name)
                raise SyntaxError("not this format")

            monkeypatch.setitem(Image.OPEN, name, (spy, accept))
    _refused(_encode(_noise("RGB", (16, 16)), "GIF"))
    _refused(NOT_IMAGES["svg-with-script"])
    assert seen == []


def test_empty_bytes_are_refused() -> None:
    assert "空文件" in _refused(b"").message


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_a_truncated_image_is_refused(fmt: str, keep: float) -> None:
    whole = _encode(_noise("RGB", (120, 90)), fmt)
    error = _refused(whole[: int(len(whole) * keep)])
    assert "损坏或不完整" in error.message


def test_a_png_with_a_bad_checksum_is_refused() -> None:
    data = bytearray(_encode(_noise("RGB", (30, 30)), "PNG"))
    data[50] ^= 0xFF  # inside the first IDAT chunk's data: its CRC no longer matches
    assert "损坏" in _refused(bytes(data)).message


def test_a_png_whose_pixels_decode_but_whose_checksum_is_wrong_is_refused() -> None:
    data = bytearray(_encode(_noise("RGB", (30, 30)), "PNG"))
    iend = data.rindex(b"IEND")
    data[iend - 5] ^= 0xFF  # the last byte of the IDAT chunk's CRC: the pixel data itself is intact
    assert "损坏" in _refused(bytes(data)).message


def test_too_many_bytes_are_refused_before_decoding() -> None:
    data = _encode(_noise("RGB", (64, 64)), "PNG")
    error = _refused(data, max_bytes=len(data) - 1)
    assert "太大" in error.message
    assert clean_photo(data, max_bytes=len(data)).width == 64


def test_too_many_pixels_are_refused() -> None:
    data = _encode(Image.new("L", (2000, 1000)), "PNG")  # small file, two megapixels
    error = _refused(data, max_pixels=1_999_999)
    assert "2000×1000" in error.message and "像素" in error.message
    assert clean_photo(data, max_pixels=2_000_000).width == 2000


def test_a_bomb_is_refused_from_its_header() -> None:
    # 50 megapixels promised, a few bytes given: refused for its size, not for the missing data it never reads
    error = _refused(_png_header_only(10_000, 5_000))
    assert "像素过多" in error.message


def test_pillows_own_bomb_guard_is_a_refusal_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    data = _encode(Image.new("L", (40, 40)), "PNG")  # 1,600 pixels: over Pillow's limit, under twice it
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert "像素过多" in _refused(data).message
    assert "像素过多" in _refused(_png_header_only(100, 100)).message  # over twice: Pillow raises


def test_check_count() -> None:
    check_count(9, max_count=9)
    check_count(1, max_count=9, min_count=1)
    with pytest.raises(InvalidInputError) as too_many:
        check_count(10, max_count=9)
    assert too_many.value.field == "photos" and "最多 9 张" in too_many.value.message
    with pytest.raises(InvalidInputError) as too_few:
        check_count(0, max_count=9, min_count=1)
    assert too_few.value.field == "photos" and "至少" in too_few.value.message
