"""Tests for patchcore_gui.io.images: every supported kind of file decodes to 8-bit RGB,
and every broken one raises ImageLoadError with a one-line message."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from patchcore_gui.io.images import (
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageLoadError,
    is_image_file,
    load_image,
)

RNG = np.random.default_rng(1234)


def _rgb_array(h: int = 24, w: int = 32) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _reference(p: Path) -> np.ndarray:
    with Image.open(p) as im:
        return np.asarray(im.convert("RGB"))


def _loaded(p: Path) -> np.ndarray:
    img = load_image(p)
    assert img.mode == "RGB"
    arr = np.asarray(img)
    assert arr.dtype == np.uint8
    return arr


def _assert_one_line_error(p: Path, **kwargs: int) -> str:
    with pytest.raises(ImageLoadError) as info:
        load_image(p, **kwargs)
    msg = str(info.value)
    assert msg.strip(), "message must not be empty"
    assert "\n" not in msg and "\r" not in msg, f"message is not one line: {msg!r}"
    return msg


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A valid PNG header declaring ``width`` x ``height`` with almost no pixel data.

    Opening reads only the header, so this exercises the size limit without
    generating gigabytes of pixels.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + _png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- good files


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tif"])
def test_8bit_rgb_matches_pil_convert_exactly(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"rgb{ext}"
    arr = _rgb_array()
    Image.fromarray(arr).save(p)
    out = _loaded(p)
    np.testing.assert_array_equal(out, _reference(p))
    np.testing.assert_array_equal(out, arr)  # lossless formats: the exact pixels


def test_8bit_rgb_jpeg_matches_pil_convert_exactly(tmp_path: Path) -> None:
    p = tmp_path / "rgb.jpg"
    Image.fromarray(_rgb_array()).save(p, quality=90)
    np.testing.assert_array_equal(_loaded(p), _reference(p))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp"])
def test_greyscale_l_matches_pil_convert_exactly(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"grey{ext}"
    grey = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    Image.fromarray(grey, mode="L").save(p)
    out = _loaded(p)
    assert out.shape == (20, 30, 3)
    np.testing.assert_array_equal(out, _reference(p))
    if ext != ".jpg":
        for c in range(3):
            np.testing.assert_array_equal(out[..., c], grey)


def test_rgba_alpha_is_dropped(tmp_path: Path) -> None:
    p = tmp_path / "rgba.png"
    rgba = RNG.integers(0, 256, (16, 16, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent: the colour must still come through unblended
    Image.fromarray(rgba, mode="RGBA").save(p)
    out = _loaded(p)
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(out, rgba[..., :3])


def _palette_image() -> Image.Image:
    return Image.fromarray(_rgb_array(16, 16)).quantize(colors=8)


def test_palette_without_transparency(tmp_path: Path) -> None:
    p = tmp_path / "pal.png"
    pal = _palette_image()
    pal.save(p)
    with Image.open(p) as im:
        assert im.mode == "P" and "transparency" not in im.info
    out = _loaded(p)
    np.testing.assert_array_equal(out, np.asarray(pal.convert("RGB")))
    np.testing.assert_array_equal(out, _reference(p))


def test_palette_with_transparency(tmp_path: Path) -> None:
    p = tmp_path / "palt.png"
    pal = _palette_image()
    index = int(np.asarray(pal)[0, 0])
    pal.save(p, transparency=index)
    with Image.open(p) as im:
        assert im.mode == "P" and "transparency" in im.info
    out = _loaded(p)
    # Transparent pixels keep their palette colour; nothing is blended with a background.
    np.testing.assert_array_equal(out, np.asarray(pal.convert("RGB")))


def test_one_bit_image(tmp_path: Path) -> None:
    p = tmp_path / "bits.png"
    bits = RNG.integers(0, 2, (10, 14), dtype=np.uint8).astype(bool)
    Image.fromarray(bits).convert("1").save(p)
    with Image.open(p) as im:
        assert im.mode == "1"
    out = _loaded(p)
    expected = np.where(bits, 255, 0).astype(np.uint8)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


def test_cmyk_jpeg(tmp_path: Path) -> None:
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(_rgb_array()).convert("CMYK").save(p, quality=95)
    with Image.open(p) as im:
        assert im.mode == "CMYK"
    out = _loaded(p)
    assert out.shape == (24, 32, 3)
    np.testing.assert_array_equal(out, _reference(p))


def _grey16(h: int = 8, w: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A 16-bit ramp of 257 * k (k = 0..255) and the 8-bit values it must become."""
    k = np.tile(np.arange(w, dtype=np.uint16) % 256, (h, 1))
    return (k * 257).astype(np.uint16), k.astype(np.uint8)


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_16bit_greyscale_scaled_to_8bit(tmp_path: Path, ext: str) -> None:
    p = tmp_path / f"g16{ext}"
    a16, expected = _grey16()
    a16[0, 0] = 65535
    expected = expected.copy()
    expected[0, 0] = 255
    Image.fromarray(a16).save(p)
    with Image.open(p) as im:
        assert im.mode.startswith("I;16")
    out = _loaded(p)
    for c in range(3):
        np.testing.assert_array_equal(out[..., c], expected)


def test_dark_16bit_image_is_still_scaled(tmp_path: Path) -> None:
    # All values <= 255: still 16-bit data, so 200 is nearly black, not 200/255 grey.
    p = tmp_path / "dark16.png"
    a16 = np.full((6, 6), 200, dtype=np.uint16)
    a16[0, 0] = 0
    Image.fromarray(a16).save(p)
    with Image.open(p) as im:
        assert im.mode.startswith("I;16")
    out = _loaded(p)
    assert out[0, 0, 0] == 0
    assert (out[1:, :, :] == 1).all()  # rint(200 / 257) = 1


@pytest.mark.parametrize("ext", [".png", ".jpg", ".tif"])
def test_exif_orientation_6_rotates(tmp_path: Path, ext: str) -> None:
    # 40 x 20, top-left quadrant red, rest blue. Orientation 6 = rotate 90 degrees
    # clockwise to display, so the red quadrant ends up in the top-right corner.
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :] = (0, 0, 255)
    arr[:10, :20] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    p = tmp_path / f"orient{ext}"
    Image.fromarray(arr).save(p, exif=exif, **({"quality": 95} if ext == ".jpg" else {}))
    img = load_image(p)
    assert img.size == (20, 40)  # width and height swapped
    out = np.asarray(img).astype(int)
    red, blue = np.array([255, 0, 0]), np.array([0, 0, 255])
    assert np.abs(out[5, 15] - red).max() <= 8  # (x=15, y=5): top right
    assert np.abs(out[5, 5] - blue).max() <= 8  # top left
    assert np.abs(out[30, 15] - blue).max() <= 8  # bottom right


def test_exif_orientation_1_unchanged(tmp_path: Path) -> None:
    arr = _rgb_array(20, 40)
    exif = Image.Exif()
    exif[0x0112] = 1
    p = tmp_path / "o1.png"
    Image.fromarray(arr).save(p, exif=exif)
    img = load_image(p)
    assert img.size == (40, 20)
    np.testing.assert_array_equal(np.asarray(img), arr)


def test_result_survives_file_removal(tmp_path: Path) -> None:
    # The returned image must be fully decoded, not lazily tied to the open file.
    p = tmp_path / "gone.png"
    arr = _rgb_array()
    Image.fromarray(arr).save(p)
    img = load_image(p)
    p.unlink()
    np.testing.assert_array_equal(np.asarray(img), arr)


def test_is_image_file_and_extensions() -> None:
    assert is_image_file("a/b/C.PNG")
    assert is_image_file("x.JpEg")
    assert not is_image_file("x.txt")
    assert not is_image_file("png")
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS)


# ---------------------------------------------------------------------------- bad files


def test_zero_byte_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    assert _assert_one_line_error(p) == "empty file (0 bytes)"


def test_missing_file(tmp_path: Path) -> None:
    assert _assert_one_line_error(tmp_path / "nope.png") == "file not found"


def test_folder_named_like_an_image(tmp_path: Path) -> None:
    p = tmp_path / "x.png"
    p.mkdir()
    # The exact wording: the generic OSError text would name the path instead.
    assert _assert_one_line_error(p) == "is a folder, not an image file"


def test_text_file_named_png(tmp_path: Path) -> None:
    p = tmp_path / "notes.png"
    p.write_text("this is not\nan image\n")
    _assert_one_line_error(p)


@pytest.mark.parametrize("fraction", [0.5, 0.8])
def test_truncated_png(tmp_path: Path, fraction: float) -> None:
    full = tmp_path / "full.png"
    Image.fromarray(_rgb_array(64, 64)).save(full)
    raw = full.read_bytes()
    p = tmp_path / "cut.png"
    p.write_bytes(raw[: int(len(raw) * fraction)])
    _assert_one_line_error(p)


def test_png_cut_inside_header(tmp_path: Path) -> None:
    full = tmp_path / "full.png"
    Image.fromarray(_rgb_array()).save(full)
    p = tmp_path / "cut.png"
    p.write_bytes(full.read_bytes()[:20])
    _assert_one_line_error(p)


@pytest.mark.parametrize("fraction", [0.3, 0.6, 0.95])
def test_truncated_jpeg(tmp_path: Path, fraction: float) -> None:
    full = tmp_path / "full.jpg"
    Image.fromarray(_rgb_array(64, 64)).save(full, quality=90)
    raw = full.read_bytes()
    p = tmp_path / "cut.jpg"
    p.write_bytes(raw[: int(len(raw) * fraction)])
    _assert_one_line_error(p)


def test_jpeg_missing_only_end_marker_is_an_error(tmp_path: Path) -> None:
    full = tmp_path / "full.jpg"
    Image.fromarray(_rgb_array(64, 64)).save(full, quality=90)
    raw = full.read_bytes()
    assert raw.endswith(b"\xff\xd9")
    p = tmp_path / "cut.jpg"
    p.write_bytes(raw[:-2])
    _assert_one_line_error(p)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_huge_declared_size_rejected_before_decoding(tmp_path: Path) -> None:
    p = tmp_path / "huge.png"
    _png_header_only(p, 12000, 11000)  # 132 MP > MAX_PIXELS, but under PIL's own 2x limit
    assert MAX_PIXELS < 12000 * 11000
    msg = _assert_one_line_error(p)
    assert "too large" in msg and "12000" in msg


def test_decompression_bomb_rejected(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    _png_header_only(p, 30000, 30000)  # beyond PIL's own hard limit: it raises itself
    assert "too large" in _assert_one_line_error(p)


def test_max_pixels_argument(tmp_path: Path) -> None:
    p = tmp_path / "small.png"
    Image.fromarray(_rgb_array(20, 30)).save(p)
    assert "too large" in _assert_one_line_error(p, max_pixels=599)
    assert load_image(p, max_pixels=600).size == (30, 20)


def test_broken_symlink(tmp_path: Path) -> None:
    p = tmp_path / "link.png"
    try:
        p.symlink_to(tmp_path / "missing.png")
    except OSError:
        pytest.skip("symlinks not supported here")
    _assert_one_line_error(p)
