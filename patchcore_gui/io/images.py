"""Image decoding that turns any supported file into an 8-bit RGB PIL image.

Ordinary 8-bit files go through exactly ``Image.open(path).convert("RGB")`` so that
preprocessing matches the reference implementation bit for bit; only the modes PIL
converts badly (16-bit and float greyscale) get explicit scaling. EXIF orientation is
applied, as an operator expects the image the camera meant.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

#: File extensions treated as images when listing folders (lower case).
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
)

#: Largest image accepted, in pixels (width x height). A 20000 x 20000 file is a
#: decompression bomb for a 224 px model: 1.2 GB as RGB before it is shrunk.
MAX_PIXELS: int = 120_000_000


class ImageLoadError(Exception):
    """An image file could not be turned into an RGB image; the message is one line."""


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` has one of the supported image extensions."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded image of any mode to 8-bit RGB."""
    mode = img.mode
    if mode in ("RGB",):
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.float64)
        # A 16-bit mode is always 16-bit data, so it is always scaled (65535 -> 255,
        # 257 * k -> k): judging by the content would map a dark 16-bit image (all
        # values <= 255) as if it were 8-bit. A 32-bit "I" image carries no bit depth,
        # so one that only holds 8-bit values is left as it is.
        scale = 257.0
        if mode == "I" and (arr.size == 0 or arr.max() <= 255):
            scale = 1.0
        arr8 = np.clip(np.rint(arr / scale), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        hi = float(arr.max()) if arr.size else 1.0
        scale = 255.0 if hi <= 1.0 else (257.0 if hi > 255 else 1.0)
        arr8 = np.clip(np.rint(arr * 255.0 if hi <= 1.0 else arr / scale), 0, 255)
        return Image.fromarray(arr8.astype(np.uint8), mode="L").convert("RGB")
    if mode == "P" and "transparency" in img.info:
        return img.convert("RGBA").convert("RGB")
    return img.convert("RGB")


def _bomb_message(pil_text: str, max_pixels: int) -> str:
    """Our wording for PIL's DecompressionBombError (raised before we see the size)."""
    m = re.search(r"\((\d+) pixels\)", pil_text)
    limit = max_pixels
    if Image.MAX_IMAGE_PIXELS:
        limit = min(limit, 2 * int(Image.MAX_IMAGE_PIXELS))
    size = f"{int(m.group(1)):,} pixels" if m else "too many pixels"
    return f"image too large: {size} (limit {limit:,} pixels; refused as a possible decompression bomb)"


def load_image(path: str | os.PathLike[str], *, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open ``path`` and return an 8-bit RGB image with EXIF orientation applied.

    Raises:
        ImageLoadError: with a one-line reason when the file is missing, not an image,
            truncated, too large, or otherwise unreadable.
    """
    p = Path(path)
    try:
        if p.is_dir():
            raise ImageLoadError("is a folder, not an image file")
        st = p.stat()
        if not stat.S_ISREG(st.st_mode):
            # A FIFO (or a link to one) would block the reader forever; a device could
            # stream without end. Only regular files are decoded.
            raise ImageLoadError("not a regular file")
        if st.st_size == 0:
            raise ImageLoadError("empty file (0 bytes)")
        with Image.open(p) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageLoadError(
                    f"image too large: {w} x {h} pixels (limit {max_pixels:,} pixels)"
                )
            img.load()
            img = ImageOps.exif_transpose(img) or img
            rgb = _to_rgb(img)
            rgb.load()
            return rgb
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError("file not found") from None
    except PermissionError:
        raise ImageLoadError("permission denied") from None
    except UnidentifiedImageError:
        raise ImageLoadError("not a recognised image format") from None
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(_bomb_message(str(exc), max_pixels)) from None
    except OSError as exc:
        if exc.errno is not None and exc.strerror:
            # A system error: its str() repeats the path, which may be thousands of
            # characters long (deep folders) or undecodable; the reason alone is clearer.
            msg = exc.strerror
        else:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "truncated" in msg.lower():
            msg = "truncated or corrupt image data"
        raise ImageLoadError(f"cannot read image: {msg}") from None
    except (ValueError, SyntaxError, MemoryError, EOFError) as exc:
        raise ImageLoadError(f"cannot decode image: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    except Exception as exc:
        # Plugins raise more than the types above on malformed files (struct.error,
        # IndexError, KeyError from EXIF parsing...); callers rely on ImageLoadError only.
        raise ImageLoadError(f"cannot decode image: {type(exc).__name__}: {exc}".splitlines()[0]) from None
