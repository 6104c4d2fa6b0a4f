"""Image validation, sanitizing and hashing; every test image is generated here with Pillow."""

import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import imagehash
import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw, ImageOps

from curation.imaging import (
    IMAGE_EXTENSIONS,
    AlreadyPresent,
    ImageRejected,
    ProcessedImage,
    is_image_path,
    process_image_bytes,
    process_image_file,
    to_signed64,
    to_unsigned64,
)
from tests.samples import encode

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)
EXIF_ORIENTATION = 0x0112
GPS_IFD = 0x8825


def noise_image(size=(96, 64), seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def smooth_image(size=(300, 200), seed=0) -> Image.Image:
    """Photo-like: coarse noise enlarged smoothly, so that JPEG loss moves its hashes little."""
    return noise_image((8, 6), seed).resize(size, Image.Resampling.BICUBIC)


def two_halves(size=(60, 40), left=RED, right=BLUE) -> Image.Image:
    image = Image.new("RGB", size, right)
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 2 - 1, size[1] - 1), fill=left)
    return image


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR is patched to claim another size (CRC recomputed), so nothing big exists."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr_start = 8 + 4  # signature, then the chunk length
    assert data[ihdr_start : ihdr_start + 4] == b"IHDR"
    data[ihdr_start + 4 : ihdr_start + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr_start : ihdr_start + 4 + 13]))
    data[ihdr_start + 17 : ihdr_start + 21] = struct.pack(">I", crc)
    return bytes(data)


def served(jpeg: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(jpeg))
    image.load()
    return image


def pixels(image_or_jpeg: Image.Image | bytes) -> np.ndarray:
    image = served(image_or_jpeg) if isinstance(image_or_jpeg, bytes) else image_or_jpeg
    return np.asarray(image)


def near(pixel, expected, tolerance=24) -> bool:
    return all(abs(int(a) - int(b)) <= tolerance for a, b in zip(pixel, expected, strict=True))


# --- rejected inputs ---------------------------------------------------------------------------------------------


def test_empty_file_is_rejected():
    with pytest.raises(ImageRejected) as caught:
        process_image_bytes(b"")
    assert caught.value.reason == "empty file (0 bytes)"


def test_truncated_jpeg_is_rejected_by_a_full_decode():
    data = encode(noise_image((256, 256)), quality=90)
    with pytest.raises(ImageRejected) as caught:
        process_image_bytes(data[: len(data) * 6 // 10])
    assert caught.value.reason.startswith("truncated or corrupt image: ")
    assert "truncated" in caught.value.reason


def test_text_file_named_jpg_is_not_an_image(tmp_path):
    path = tmp_path / "lesion.jpg"
    path.write_text("patient notes, not a photo\n")
    with pytest.raises(ImageRejected) as caught:
        process_image_file(path)
    assert caught.value.reason == "not an image: cannot identify the file format"


def test_format_outside_the_accepted_list_is_not_an_image():
    icon = encode(Image.new("RGB", (32, 32), RED), "ICO")
    assert Image.open(io.BytesIO(icon)).format == "ICO"  # Pillow could open it; we refuse to
    with pytest.raises(ImageRejected) as caught:
        process_image_bytes(icon)
    assert caught.value.reason.startswith("not an image")


def test_png_claiming_60000_by_60000_is_rejected_from_the_header():
    with pytest.raises(ImageRejected) as caught:
        process_image_bytes(png_claiming_size(60_000, 60_000))
    assert caught.value.reason == "too many pixels: 3600.0 MP, the limit is 50.0 MP"


def test_png_over_our_limit_but_under_pillows_is_rejected_with_its_size():
    with pytest.raises(ImageRejected) as caught:
        process_image_bytes(png_claiming_size(8000, 8000))
    assert caught.value.reason == "too many pixels: 8000×8000 = 64.0 MP, the limit is 50.0 MP"


def test_pillows_bomb_warning_zone_is_a_rejection_not_a_warning():
    with pytest.raises(ImageRejected) as caught:
        process_image_bytes(png_claiming_size(10_000, 10_000), max_pixels=200_000_000)
    assert caught.value.reason.startswith("too many pixels: 100.0 MP")


def test_max_pixels_is_configurable():
    data = encode(noise_image((100, 100)), "PNG")
    with pytest.raises(ImageRejected, match=r"100×100 = 0\.0 MP"):
        process_image_bytes(data, max_pixels=5000)
    assert process_image_bytes(data, max_pixels=10_000).width == 100


def test_unreadable_file_is_rejected_with_the_os_reason(tmp_path):
    with pytest.raises(ImageRejected) as caught:
        process_image_file(tmp_path / "missing.jpg")
    assert caught.value.reason == "unreadable: [Errno 2] No such file or directory"
    with pytest.raises(ImageRejected, match=r"^unreadable: \[Errno 21\]"):
        process_image_file(tmp_path)


# --- colour modes ------------------------------------------------------------------------------------------------


def test_adobe_inverted_cmyk_jpeg_keeps_its_colours():
    data = encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)))  # pure red in ink terms
    assert b"Adobe" in data[:64]
    assert Image.open(io.BytesIO(data)).tile[0].args[0] == "CMYK;I"
    result = process_image_bytes(data)
    assert near(served(result.sanitized_jpeg).getpixel((16, 16)), RED)


def test_rgba_png_is_flattened_on_white():
    image = Image.new("RGBA", (40, 20), (0, 0, 0, 0))
    ImageDraw.Draw(image).rectangle((20, 0, 39, 19), fill=(*RED, 255))
    sanitized = served(process_image_bytes(encode(image, "PNG")).sanitized_jpeg)
    assert sanitized.mode == "RGB"
    assert near(sanitized.getpixel((5, 10)), WHITE)
    assert near(sanitized.getpixel((35, 10)), RED)


def test_palette_png_with_a_transparent_index_is_flattened_on_white():
    image = Image.new("P", (40, 20), 0)
    image.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)
    ImageDraw.Draw(image).rectangle((20, 0, 39, 19), fill=1)
    data = encode(image, "PNG", transparency=0)
    assert Image.open(io.BytesIO(data)).mode == "P"
    sanitized = served(process_image_bytes(data).sanitized_jpeg)
    assert near(sanitized.getpixel((5, 10)), WHITE)
    assert near(sanitized.getpixel((35, 10)), (0, 128, 0))


def test_sixteen_bit_png_gradient_keeps_its_range():
    gradient = np.linspace(0, 65535, 256).round().astype(np.uint16)[None, :].repeat(16, axis=0)
    data = encode(Image.fromarray(gradient), "PNG")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    pixels = np.asarray(served(process_image_bytes(data).sanitized_jpeg).convert("L"), dtype=int)
    assert pixels[:, :4].mean() < 8
    assert pixels[:, -4:].mean() > 247
    assert abs(pixels[:, 126:130].mean() - 128) < 8


def test_float_tiff_is_stretched_to_eight_bits():
    ramp = np.linspace(-1.0, 3.0, 128, dtype=np.float32)[None, :].repeat(8, axis=0)
    data = encode(Image.fromarray(ramp), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "F"
    pixels = np.asarray(served(process_image_bytes(data).sanitized_jpeg).convert("L"), dtype=int)
    assert pixels[:, :4].mean() < 8
    assert pixels[:, -4:].mean() > 247


@pytest.mark.parametrize(("mode", "format"), [("L", "JPEG"), ("1", "PNG"), ("LA", "PNG")])
def test_grayscale_and_bilevel_images_become_rgb(mode, format):
    image = Image.new(mode, (32, 16), 0 if mode != "LA" else (0, 255))
    ImageDraw.Draw(image).rectangle((16, 0, 31, 15), fill=255 if mode != "LA" else (255, 255))
    result = process_image_bytes(encode(image, format))
    sanitized = served(result.sanitized_jpeg)
    assert sanitized.mode == "RGB"
    assert near(sanitized.getpixel((4, 8)), (0, 0, 0))
    assert near(sanitized.getpixel((28, 8)), WHITE)


def test_lab_tiff_is_converted_through_a_colour_transform():
    data = encode(Image.new("LAB", (8, 8), (255, 128, 128)), "TIFF")  # L*=100, a*=b*=0: white
    assert near(served(process_image_bytes(data).sanitized_jpeg).getpixel((4, 4)), WHITE, tolerance=6)


def test_embedded_srgb_profile_changes_nothing_and_a_broken_profile_is_ignored():
    image = two_halves()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    plain = process_image_bytes(encode(image, "PNG"))
    tagged = process_image_bytes(encode(image, "PNG", icc_profile=srgb))
    broken = process_image_bytes(encode(image, "PNG", icc_profile=b"not a profile"))
    assert tagged.sanitized_jpeg == plain.sanitized_jpeg
    assert broken.sanitized_jpeg == plain.sanitized_jpeg


def test_animated_gif_uses_its_first_frame():
    frames = [Image.new("P", (20, 20), 0), Image.new("P", (20, 20), 1)]
    for frame in frames:
        frame.putpalette([*RED, *BLUE] + [0] * 762)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    result = process_image_bytes(data)
    assert (result.original_format, result.original_extension) == ("GIF", "gif")
    assert near(served(result.sanitized_jpeg).getpixel((10, 10)), RED)


def test_multi_picture_jpeg_from_a_phone_uses_its_first_picture():
    first, second = Image.new("RGB", (2100, 1000), RED), Image.new("RGB", (2100, 1000), BLUE)
    data = encode(first, "MPO", save_all=True, append_images=[second], quality=85)
    result = process_image_bytes(data)
    assert (result.original_format, result.original_extension) == ("MPO", "jpg")
    assert (result.width, result.sanitized_width, result.sanitized_height) == (2100, 1024, 488)
    assert near(served(result.sanitized_jpeg).getpixel((500, 200)), RED)


@pytest.mark.parametrize(
    ("format", "extension"),
    [("JPEG", "jpg"), ("PNG", "png"), ("WEBP", "webp"), ("BMP", "bmp"), ("TIFF", "tif")],
)
def test_original_format_and_extension_are_reported(format, extension):
    data = encode(noise_image(), format)
    result = process_image_bytes(data)
    assert (result.original_format, result.original_extension) == (format, extension)
    assert result.original_bytes == data


# --- orientation and metadata ------------------------------------------------------------------------------------


def jpeg_with_orientation_and_gps(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    return encode(two_halves((60, 40)), quality=95, exif=exif.tobytes(), comment=b"clinic 12, patient 345")


@pytest.mark.parametrize(("orientation", "red_at", "blue_at"), [(6, (20, 5), (20, 54)), (8, (20, 54), (20, 5))])
def test_exif_rotated_jpeg_is_served_upright_without_any_metadata(orientation, red_at, blue_at):
    data = jpeg_with_orientation_and_gps(orientation)
    original = Image.open(io.BytesIO(data))
    assert original.getexif()[EXIF_ORIENTATION] == orientation
    assert original.getexif().get_ifd(GPS_IFD)  # the input really carries a location

    result = process_image_bytes(data)

    assert (result.width, result.height) == (40, 60)
    assert (result.sanitized_width, result.sanitized_height) == (40, 60)
    for jpeg in (result.sanitized_jpeg, result.thumbnail_jpeg):
        image = served(jpeg)
        assert image.size == (40, 60)
        assert not image.getexif()
        assert not image.getexif().get_ifd(GPS_IFD)
        assert not {"exif", "icc_profile", "comment", "xmp", "XML:com.adobe.xmp"} & set(image.info)
        assert b"Exif\x00\x00" not in jpeg
        assert b"PhoneMaker" not in jpeg
        assert b"patient" not in jpeg
    sanitized = served(result.sanitized_jpeg)
    assert near(sanitized.getpixel(red_at), RED)
    assert near(sanitized.getpixel(blue_at), BLUE)


def quadrants(size=(64, 48)) -> Image.Image:
    """Four colours, one per quadrant, so that every flip and rotation looks different."""
    image = Image.new("RGB", size, (0, 200, 0))
    draw = ImageDraw.Draw(image)
    half_width, half_height = size[0] // 2, size[1] // 2
    draw.rectangle((0, 0, half_width - 1, half_height - 1), fill=RED)
    draw.rectangle((half_width, 0, size[0] - 1, half_height - 1), fill=BLUE)
    draw.rectangle((0, half_height, half_width - 1, size[1] - 1), fill=WHITE)
    return image


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_matches_pillows_exif_transpose(orientation):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    data = encode(quadrants(), quality=95, exif=exif.tobytes())
    expected = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    result = process_image_bytes(data)
    sanitized = served(result.sanitized_jpeg)
    assert sanitized.size == expected.size == (result.width, result.height)
    for x, y in ((8, 8), (expected.width - 8, 8), (8, expected.height - 8), (expected.width - 8, expected.height - 8)):
        assert near(sanitized.getpixel((x, y)), expected.getpixel((x, y)))


def test_orientation_written_only_in_xmp_is_applied():
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description tiff:Orientation="6"/></x:xmpmeta>'
    result = process_image_bytes(encode(two_halves((60, 40)), quality=95, xmp=xmp))
    assert (result.width, result.height) == (40, 60)
    assert b"xmpmeta" not in result.sanitized_jpeg


# --- JPEGs served as they came ---------------------------------------------------------------------------------


def with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """The JPEG with one more marker segment right after its start-of-image marker."""
    return jpeg[:2] + bytes([0xFF, marker]) + (len(payload) + 2).to_bytes(2, "big") + payload + jpeg[2:]


def header_markers(jpeg: bytes) -> list[int]:
    """The marker codes of the segments before the first scan."""
    markers, position = [], 2
    while jpeg[position + 1] != 0xDA:
        markers.append(jpeg[position + 1])
        position += 2 + int.from_bytes(jpeg[position + 2 : position + 4], "big")
    return markers


def jpeg_full_of_metadata(**options) -> bytes:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 1
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0)})
    data = encode(
        smooth_image(),
        quality=75,
        exif=exif.tobytes(),
        icc_profile=ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes(),
        xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/">patient 345</x:xmpmeta>',
        comment=b"clinic 12, patient 345",
        dpi=(300, 300),
        **options,
    )
    data = with_segment(data, 0xED, b"Photoshop 3.0\x008BIM\x04\x04 IPTC: patient 345")
    data = with_segment(data, 0xE0, b"JFXX\x00\x13 an embedded thumbnail")
    return data + b"notes appended after the image: patient 345"


@pytest.mark.parametrize("progressive", [False, True])
def test_jpeg_needing_no_change_is_served_with_its_own_pixels_and_no_metadata(progressive):
    data = jpeg_full_of_metadata(progressive=progressive)
    original = Image.open(io.BytesIO(data))
    assert original.getexif().get_ifd(GPS_IFD)  # the input really carries a location
    assert {"exif", "icc_profile", "comment", "xmp", "dpi"} <= set(original.info)

    result = process_image_bytes(data)

    sanitized = served(result.sanitized_jpeg)
    assert np.array_equal(pixels(sanitized), pixels(data))  # not re-encoded: not even JPEG loss
    assert sanitized.info.get("progressive", 0) == progressive
    assert not sanitized.getexif()
    assert not {"exif", "icc_profile", "comment", "xmp", "photoshop", "adobe", "dpi"} & set(sanitized.info)
    assert set(header_markers(result.sanitized_jpeg)) <= {0xE0, 0xC0, 0xC2, 0xC4, 0xDB, 0xDD}
    assert result.sanitized_jpeg.count(b"\xff\xe0") == 1  # the bare JFIF header, not the JFXX thumbnail
    for text in (b"Exif", b"PhoneMaker", b"ICC_PROFILE", b"xmpmeta", b"Photoshop", b"JFXX", b"patient", b"appended"):
        assert text not in result.sanitized_jpeg
    assert result.sanitized_jpeg.endswith(b"\xff\xd9")


def test_restart_markers_and_fill_bytes_in_the_scan_are_kept_as_they_are():
    data = encode(noise_image((64, 48)), quality=60, restart_marker_blocks=1)
    assert b"\xff\xd0" in data
    data = data[:-2] + b"\xff\xff\xff\xd9"  # fill bytes before the end-of-image marker are allowed
    result = process_image_bytes(data)
    assert np.array_equal(pixels(result.sanitized_jpeg), pixels(data))


def with_component_ids(jpeg: bytes, ids: bytes) -> bytes:
    """A baseline JPEG whose three components are renumbered in its frame and scan headers."""
    data, position = bytearray(jpeg), 2
    while data[position + 1] != 0xDA:
        marker = data[position + 1]
        if marker == 0xC0:
            data[position + 10 : position + 19 : 3] = ids
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    data[position + 5 : position + 11 : 2] = ids
    return bytes(data)


def test_adobe_rgb_encoded_jpeg_keeps_the_segment_that_decides_its_colours():
    # Stored as RGB rather than YCbCr, and only the Adobe segment says so: with
    # components numbered 1, 2, 3 and no Adobe segment, libjpeg assumes YCbCr.
    data = with_component_ids(encode(two_halves((64, 48)), quality=80, keep_rgb=True), b"\x01\x02\x03")
    assert Image.open(io.BytesIO(data)).info.get("adobe_transform") == 0
    assert near(served(data).getpixel((8, 24)), RED)
    result = process_image_bytes(data)
    assert np.array_equal(pixels(result.sanitized_jpeg), pixels(data))


@pytest.mark.parametrize(("orientation", "size"), [(1, (60, 40)), (6, (40, 60))])
def test_only_an_upright_jpeg_is_served_as_it_came(orientation, size):
    data = jpeg_with_orientation_and_gps(orientation)
    result = process_image_bytes(data)
    sanitized = served(result.sanitized_jpeg)
    assert sanitized.size == size
    assert np.array_equal(pixels(sanitized), pixels(data)) == (orientation == 1)
    assert b"Exif" not in result.sanitized_jpeg


def test_jpeg_decoded_at_reduced_scale_is_re_encoded_at_the_cap():
    # 2048 px wide: libjpeg decodes it at half scale, exactly the 1024 px cap.
    result = process_image_bytes(encode(smooth_image((2048, 1536)), quality=80))
    assert served(result.sanitized_jpeg).size == (1024, 768)


def test_multi_picture_jpeg_is_served_as_its_first_picture_alone():
    first, second = smooth_image((60, 40), seed=1), smooth_image((60, 40), seed=2)
    data = encode(first, "MPO", save_all=True, append_images=[second], quality=85)
    result = process_image_bytes(data)
    assert np.array_equal(pixels(result.sanitized_jpeg), pixels(data))
    assert Image.open(io.BytesIO(result.sanitized_jpeg)).format == "JPEG"
    assert result.sanitized_jpeg.count(b"\xff\xd8") == 1
    assert b"MPF" not in result.sanitized_jpeg


def test_jpeg_with_an_unusual_structure_is_re_encoded_without_metadata():
    data = jpeg_with_orientation_and_gps(1)
    data = data[:2] + b"\xff" + data[2:]  # a fill byte before the first segment: legal, but not ours to copy
    result = process_image_bytes(data)
    sanitized = served(result.sanitized_jpeg)
    assert sanitized.size == (60, 40)
    assert not np.array_equal(pixels(sanitized), pixels(data))  # a fresh encode at quality 90
    assert near(sanitized.getpixel((10, 20)), RED)
    assert b"Exif" not in result.sanitized_jpeg
    assert b"patient" not in result.sanitized_jpeg


# --- sizes, hashes, identity -------------------------------------------------------------------------------------


def test_sanitized_and_thumbnail_longest_sides_are_capped():
    result = process_image_bytes(encode(noise_image((2000, 500)), quality=90))
    assert (result.width, result.height) == (2000, 500)
    assert (result.sanitized_width, result.sanitized_height) == (1024, 256)
    assert served(result.sanitized_jpeg).size == (1024, 256)
    assert served(result.thumbnail_jpeg).size == (256, 64)

    smaller = process_image_bytes(encode(noise_image((2000, 500))), sanitized_max_side=300, thumbnail_max_side=30)
    assert served(smaller.sanitized_jpeg).size == (300, 75)
    assert served(smaller.thumbnail_jpeg).size == (30, 8)


def test_jpeg_draft_decoding_keeps_the_full_cap_for_odd_sizes():
    result = process_image_bytes(encode(noise_image((4099, 3001)), quality=85))
    assert (result.width, result.height) == (4099, 3001)
    assert (result.sanitized_width, result.sanitized_height) == (1024, 750)


def test_small_images_are_not_enlarged():
    result = process_image_bytes(encode(noise_image((120, 80)), "PNG"))
    assert (result.sanitized_width, result.sanitized_height) == (120, 80)
    assert served(result.thumbnail_jpeg).size == (120, 80)


def test_sha256_is_of_the_original_bytes(tmp_path):
    data = encode(noise_image(), "PNG")
    path = tmp_path / "photo.png"
    path.write_bytes(data)
    result = process_image_file(path)
    assert isinstance(result, ProcessedImage)
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert process_image_bytes(data).sha256 == result.sha256


def test_known_sha256_returns_already_present_without_decoding(tmp_path):
    path = tmp_path / "looks-like.jpg"
    path.write_bytes(b"not decodable at all")  # decoding it would raise ImageRejected
    sha256 = hashlib.sha256(b"not decodable at all").hexdigest()
    assert process_image_file(path, known_sha256={sha256}) == AlreadyPresent(sha256=sha256)
    with pytest.raises(ImageRejected):
        process_image_file(path, known_sha256=frozenset({"0" * 64}))


def fingerprint_of(image):
    return image.convert("L").resize((64, 64), Image.Resampling.BOX)


def test_hashes_are_deterministic_signed_64_bit_and_match_imagehash_on_the_served_file():
    data = encode(noise_image((640, 480), seed=7), quality=88)
    first, second = process_image_bytes(data), process_image_bytes(data)
    assert (first.phash, first.dhash, first.sanitized_jpeg) == (second.phash, second.dhash, second.sanitized_jpeg)
    for value in (first.phash, first.dhash):
        assert -(2**63) <= value < 2**63
    # Served as it came, the stored file decodes to exactly the hashed pixels (hashed at 64 × 64, area-averaged).
    stored = fingerprint_of(served(first.sanitized_jpeg))
    assert stored.tobytes() == first.fingerprint
    assert to_unsigned64(first.phash) == int(str(imagehash.phash(stored)), 16)
    assert to_unsigned64(first.dhash) == int(str(imagehash.dhash(stored)), 16)


def test_hashes_of_a_re_encoded_image_are_of_its_pixels_and_close_to_the_stored_file():
    image = smooth_image((640, 480), seed=3)
    result = process_image_bytes(encode(image, "PNG"))  # within the cap: the sanitized pixels are these
    gray = fingerprint_of(image)
    assert to_unsigned64(result.phash) == int(str(imagehash.phash(gray)), 16)
    assert to_unsigned64(result.dhash) == int(str(imagehash.dhash(gray)), 16)
    # The stored copy went through JPEG at quality 90: its hashes may move by a bit or two.
    stored = fingerprint_of(served(result.sanitized_jpeg))
    assert (to_unsigned64(result.phash) ^ int(str(imagehash.phash(stored)), 16)).bit_count() <= 4
    assert (to_unsigned64(result.dhash) ^ int(str(imagehash.dhash(stored)), 16)).bit_count() <= 4


def test_different_images_get_different_hashes():
    first = process_image_bytes(encode(noise_image((200, 200), seed=1)))
    second = process_image_bytes(encode(noise_image((200, 200), seed=2)))
    assert first.phash != second.phash
    assert first.dhash != second.dhash


def test_signed_unsigned_conversion_round_trips_at_the_edges():
    for unsigned, signed in [(0, 0), (2**63 - 1, 2**63 - 1), (2**63, -(2**63)), (2**64 - 1, -1)]:
        assert to_signed64(unsigned) == signed
        assert to_unsigned64(signed) == unsigned
    with pytest.raises(ValueError, match="unsigned"):
        to_signed64(2**64)
    with pytest.raises(ValueError, match="signed"):
        to_unsigned64(2**63)


def test_image_extensions_match_case_insensitively():
    assert all(extension == extension.lower() and extension.startswith(".") for extension in IMAGE_EXTENSIONS)
    assert is_image_path("Melanoma/ISIC_0024310.JPG")
    assert is_image_path("a/b.Jpeg")
    assert is_image_path("scan.TIFF")
    assert not is_image_path("notes.txt")
    assert not is_image_path("jpg")


def test_upper_case_jpg_file_is_processed(tmp_path):
    path = tmp_path / "LESION.JPG"
    path.write_bytes(encode(noise_image()))
    result = process_image_file(path)
    assert result.original_extension == "jpg"


def test_results_and_rejections_survive_a_process_pool_round_trip():
    result = process_image_bytes(encode(noise_image()))
    # Our own objects, pickled here: exactly what a process pool does with them.
    assert pickle.loads(pickle.dumps(result)) == result  # noqa: S301
    rejection = pickle.loads(pickle.dumps(ImageRejected("empty file (0 bytes)")))  # noqa: S301
    assert rejection.reason == "empty file (0 bytes)"


def test_imaging_and_dedup_load_no_django():
    # Import workers run these modules in a process pool; Django in every worker would cost startup time.
    code = (
        "import sys, curation.imaging, curation.dedup; "
        "print(sorted(name for name in sys.modules if name.split('.')[0] in ('django', 'rest_framework', 'celery')))"
    )
    repo_root = Path(__file__).resolve().parents[2]
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=repo_root, env=env, capture_output=True, text=True, check=True
    ).stdout
    assert output.strip() == "[]"
