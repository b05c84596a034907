"""Property-based fuzzing of the two parsers that read untrusted files.

* ``load_image``: any bytes give an 8-bit RGB image or ``ImageLoadError``, never
  another exception (arbitrary bytes, mutated valid files of every format, and
  structurally valid PNGs with random headers, palettes and EXIF blocks). Since
  ``load_image`` wraps every exception by construction, that alone could only fail by
  hanging; so each example is also decoded by plain PIL here (open, size check, load,
  EXIF transpose, convert): what PIL decodes, ``load_image`` must return with the same
  size (and, for 8-bit modes, the same pixels); what PIL refuses, it must refuse with
  a one-line reason that does not repeat the file's path (the caller adds the path).
* ``read_model_file`` / ``PatchCoreModel.load``: any bytes give ``ModelFileError`` or
  a usable model, never another exception, never a hang (arbitrary bytes, mutated
  valid files, and valid files whose metadata values are replaced by random JSON).

The corpus is generated here; hypothesis' example database is off so nothing is
written into the checkout.
"""

from __future__ import annotations

import faulthandler
import io
import json
import math
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from patchcore_gui.core.modelfile import ModelFileError, read_model_file
from patchcore_gui.io.images import IMAGE_EXTENSIONS, ImageLoadError, load_image

# PIL warns (UserWarning "Corrupt EXIF data", DecompressionBombWarning...) on garbage
# before raising or recovering; the property is about exceptions, not warnings.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::RuntimeWarning")

FUZZ = settings(
    max_examples=120,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: Fuzzed images are decoded under a small pixel limit: a mutated header claiming,
#: say, 9000 x 9000 is legal at the default limit but would make every such example
#: allocate hundreds of MB. The limit's own behaviour is tested in tests/io.
FUZZ_MAX_PIXELS = 1_000_000
#: One parse must never take longer than this (a hang or pathological slowness).
MAX_SECONDS = 20.0


@pytest.fixture(autouse=True)
def hang_guard() -> Iterator[None]:
    """Abort with every thread's traceback if one test hangs (a parser loop would)."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# =========================================================================== images


def _encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))
    exif = rgb.getexif()
    exif[0x0112] = 6
    return {
        "png": _encode(rgb, "PNG"),
        "png16": _encode(Image.fromarray(rng.integers(0, 65535, (12, 16), dtype=np.uint16)), "PNG"),
        "png_palette": _encode(rgb.convert("P"), "PNG", transparency=3),
        "png_exif": _encode(rgb, "PNG", exif=exif),
        "png_la": _encode(rgb.convert("LA"), "PNG"),
        "jpeg": _encode(rgb, "JPEG", quality=80),
        "jpeg_progressive": _encode(rgb, "JPEG", quality=80, progressive=True, exif=exif),
        "jpeg_cmyk": _encode(rgb.convert("CMYK"), "JPEG"),
        "tiff": _encode(rgb, "TIFF"),
        "tiff_lzw": _encode(rgb, "TIFF", compression="tiff_lzw"),
        "bmp": _encode(rgb, "BMP"),
        "bmp_1bit": _encode(rgb.convert("1"), "BMP"),
        "gif": _encode(rgb.convert("P"), "GIF"),
    }


SEEDS = _seeds()
EXTS = sorted(IMAGE_EXTENSIONS)


#: Modes whose RGB conversion ``load_image`` scales itself (16-bit, 32-bit and float
#: greyscale): only their size is compared with plain PIL's, not their pixels.
_SCALED_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


def _plain_pil(path: Path) -> np.ndarray | str | None:
    """What plain PIL makes of the file, independently of ``load_image``.

    Returns the RGB pixels (an (h, w, 0) array of the right size for the scaled
    modes), "too large" over the fuzz pixel limit, or None when PIL cannot decode it.
    """
    try:
        with Image.open(path) as im:
            if im.size[0] * im.size[1] > FUZZ_MAX_PIXELS:
                return "too large"
            im.load()
            im = ImageOps.exif_transpose(im) or im
            if im.mode in _SCALED_MODES:
                return np.zeros((im.size[1], im.size[0], 0), dtype=np.uint8)
            return np.asarray(im.convert("RGB"))
    except Exception:  # any failure means "PIL cannot decode this"
        return None


def _check_image(path: Path) -> None:
    """The property: plain PIL's image as 8-bit RGB, or a one-line ImageLoadError when PIL fails."""
    want = _plain_pil(path)
    t0 = time.perf_counter()
    try:
        img = load_image(path, max_pixels=FUZZ_MAX_PIXELS)
    except ImageLoadError as exc:
        msg = str(exc)
        assert msg.strip() and "\n" not in msg, repr(msg)
        assert str(path) not in msg and len(msg) < 300, msg
        assert not isinstance(want, np.ndarray), f"plain PIL decodes {want.shape} but load_image says: {msg}"
        if isinstance(want, str):
            assert "too large" in msg, msg
    else:
        assert isinstance(want, np.ndarray), f"load_image returned an image where plain PIL gives {want!r}"
        assert img.mode == "RGB"
        arr = np.asarray(img)
        assert arr.dtype == np.uint8 and arr.ndim == 3 and arr.shape[2] == 3
        assert arr.shape[:2] == want.shape[:2]
        if want.shape[2]:  # 8-bit modes: exactly PIL's own conversion
            np.testing.assert_array_equal(arr, want)
    assert time.perf_counter() - t0 < MAX_SECONDS


@pytest.mark.parametrize("seed", sorted(SEEDS))
def test_valid_seed_images_decode_to_their_size(work: Path, seed: str) -> None:
    # The unmutated files decode (12 x 16, or 16 x 12 where EXIF orientation 6 rotates them).
    path = work / f"seed_{seed}.img"
    path.write_bytes(SEEDS[seed])
    img = load_image(path)
    rotated = seed in ("png_exif", "jpeg_progressive")
    assert img.mode == "RGB" and img.size == ((12, 16) if rotated else (16, 12))
    _check_image(path)


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 16), st.integers(0, 7)),
    st.tuples(st.just("set"), st.integers(0, 1 << 16), st.integers(0, 255)),
    st.tuples(st.just("truncate"), st.integers(0, 1 << 16), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 16), st.integers(1, 16)),
)


def _mutate(data: bytes, mutations: list[tuple[str, int, Any]], lo: int = 0, hi: int | None = None) -> bytes:
    """Apply mutations at positions folded into [lo, hi) of the current data."""
    buf = bytearray(data)
    for op, pos, arg in mutations:
        if not buf:
            break
        end = len(buf) if hi is None else min(hi, len(buf))
        i = lo + pos % max(1, end - lo)
        i = min(i, len(buf) - 1)
        if op == "flip":
            buf[i] ^= 1 << arg
        elif op == "set":
            buf[i] = arg
        elif op == "truncate":
            del buf[i:]
        elif op == "insert":
            buf[i:i] = arg
        else:
            del buf[i : i + arg]
    return bytes(buf)


@FUZZ
@given(data=st.binary(max_size=4096), ext=st.sampled_from(EXTS))
def test_arbitrary_bytes_decode_or_image_error(work: Path, data: bytes, ext: str) -> None:
    path = work / f"any{ext}"
    path.write_bytes(data)
    _check_image(path)


@FUZZ
@given(magic=st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"BM",
                              b"II*\x00", b"MM\x00*", b"GIF89a", b"GIF87a"]),
       rest=st.binary(max_size=2048))
def test_magic_prefixed_garbage(work: Path, magic: bytes, rest: bytes) -> None:
    # Garbage behind a real signature reaches each format's own parser, not just the sniffing.
    path = work / "magic.png"
    path.write_bytes(magic + rest)
    _check_image(path)


@FUZZ
@given(seed=st.sampled_from(sorted(SEEDS)), mutations=st.lists(_mutation, min_size=1, max_size=8),
       header_bias=st.booleans())
def test_mutated_valid_images(work: Path, seed: str, mutations: list[tuple[str, int, Any]],
                              header_bias: bool) -> None:
    data = SEEDS[seed]
    # Half the time aim at the first 64 bytes, where sizes and modes are declared.
    path = work / "mutated.img"
    path.write_bytes(_mutate(data, mutations, 0, 64 if header_bias else None))
    _check_image(path)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


_png_header = st.fixed_dictionaries({
    "width": st.integers(0, 80),
    "height": st.integers(0, 80),
    "depth": st.sampled_from([1, 2, 4, 8, 16, 3, 32]),
    "color": st.sampled_from([0, 2, 3, 4, 6, 1, 5]),
    "compression": st.sampled_from([0, 0, 0, 1]),
    "filter": st.sampled_from([0, 0, 0, 1]),
    "interlace": st.sampled_from([0, 1, 2]),
})


@FUZZ
@given(h=_png_header, payload=st.binary(max_size=3000), compress=st.booleans(),
       plte=st.one_of(st.none(), st.binary(max_size=800)), trns=st.one_of(st.none(), st.binary(max_size=300)),
       exif=st.one_of(st.none(), st.binary(max_size=200),
                      st.binary(max_size=200).map(lambda b: b"MM\x00*\x00\x00\x00\x08" + b)))
def test_structurally_valid_pngs(work: Path, h: dict[str, int], payload: bytes, compress: bool,
                                 plte: bytes | None, trns: bytes | None, exif: bytes | None) -> None:
    # Valid CRCs everywhere, so the decoder (and EXIF rotation) sees the random values.
    ihdr = struct.pack(">IIBBBBB", h["width"], h["height"], h["depth"], h["color"], h["compression"],
                       h["filter"], h["interlace"])
    chunks = [_chunk(b"IHDR", ihdr)]
    if plte is not None:
        chunks.append(_chunk(b"PLTE", plte))
    if trns is not None:
        chunks.append(_chunk(b"tRNS", trns))
    if exif is not None:
        chunks.append(_chunk(b"eXIf", exif))
    chunks.append(_chunk(b"IDAT", zlib.compress(payload) if compress else payload))
    chunks.append(_chunk(b"IEND", b""))
    path = work / "structured.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"".join(chunks))
    _check_image(path)


@FUZZ
@given(exif=st.binary(max_size=400), byte_order=st.sampled_from([b"II*\x00", b"MM\x00*"]))
def test_jpeg_with_random_exif(work: Path, exif: bytes, byte_order: bytes) -> None:
    # EXIF parsing runs on every photo (orientation); a random TIFF block must not escape.
    jpeg = SEEDS["jpeg"]
    app1 = b"Exif\x00\x00" + byte_order + b"\x00\x00\x00\x08" + exif
    segment = b"\xff\xe1" + struct.pack(">H", min(len(app1) + 2, 0xFFFF)) + app1[:0xFFFD]
    path = work / "exif.jpg"
    path.write_bytes(jpeg[:2] + segment + jpeg[2:])
    _check_image(path)


# =========================================================================== model files


@pytest.fixture(scope="module")
def small_model(work: Path) -> Path:
    """A valid, small model file: resnet18 up to layer1 (random weights), 16 x 64 bank."""
    from patchcore_gui.core.backbones import FeatureExtractor
    from patchcore_gui.core.calibration import uncalibrated
    from patchcore_gui.core.features import EmbeddingConfig
    from patchcore_gui.core.model import ModelConfig, PatchCoreModel

    torch.manual_seed(0)
    ext = FeatureExtractor("resnet18", ["layer1"])
    cfg = ModelConfig(backbone="resnet18", layers=("layer1",), embedding=EmbeddingConfig(mode="native"),
                      resize=40, crop=32)
    bank = torch.randn(16, 64)
    # Format 2 requires the BatchNorm warm-up to be recorded; this random stem had none.
    model = PatchCoreModel(cfg, ext, bank, {**uncalibrated(), "bn_warmup": "none"}, device="cpu")
    path = work / "small.patchcore"
    model.save(path)
    PatchCoreModel.load(path, device="cpu")  # the seed itself is valid
    return path


PROBE = np.random.default_rng(1).integers(0, 256, (40, 44, 3), dtype=np.uint8)


def _check_model(path: Path) -> None:
    """The property: ModelFileError, or a model whose every reader works."""
    from patchcore_gui.core.model import PatchCoreModel

    t0 = time.perf_counter()
    try:
        read_model_file(path)
    except ModelFileError as exc:
        assert "\n" not in str(exc)
    try:
        model = PatchCoreModel.load(path, device="cpu")
    except ModelFileError as exc:
        assert "\n" not in str(exc) and str(exc).strip()
    else:
        # Accepted files must be usable: summary, thresholds and (when cheap) a prediction.
        model.summary()
        float(model.image_threshold)
        float(model.pixel_threshold)
        if model.config.crop <= 128:
            scores, maps = model.predict([PROBE])
            assert math.isfinite(scores[0]), model.config
            assert maps[0].shape == (model.config.crop, model.config.crop)
    assert time.perf_counter() - t0 < MAX_SECONDS


def _header_len(data: bytes) -> int:
    return 8 + struct.unpack("<Q", data[:8])[0]


@settings(FUZZ, max_examples=80)
@given(data=st.binary(max_size=2048))
def test_model_arbitrary_bytes(work: Path, data: bytes) -> None:
    path = work / "any.patchcore"
    path.write_bytes(data)
    _check_model(path)


_json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-3, 5000), st.integers(), st.floats(),
              st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=6,
)


@settings(FUZZ, max_examples=80)
@given(header=st.dictionaries(
    st.sampled_from(["memory_bank", "backbone.conv1.weight", "__metadata__", "x"]),
    st.one_of(_json_value, st.fixed_dictionaries({
        "dtype": st.sampled_from(["F32", "F16", "I64", "U8", "BOOL", "F8", 3]),
        "shape": st.lists(st.integers(-2, 2**40), max_size=3),
        "data_offsets": st.lists(st.integers(-8, 2**40), min_size=2, max_size=2),
    })), max_size=4),
    meta_ok=st.booleans(), data=st.binary(max_size=256))
def test_model_random_safetensors_headers(work: Path, header: dict[str, Any], meta_ok: bool, data: bytes) -> None:
    if meta_ok:  # get past the format check into entry validation
        header["__metadata__"] = {"patchcore_gui": json.dumps({"format": "patchcore_gui.model", "format_version": 1})}
    raw = json.dumps(header).encode()
    path = work / "hdr.patchcore"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    _check_model(path)


@settings(FUZZ, max_examples=100)
@given(mutations=st.lists(_mutation, min_size=1, max_size=6), in_header=st.booleans())
def test_model_mutated_valid_file(work: Path, small_model: Path, mutations: list[tuple[str, int, Any]],
                                  in_header: bool) -> None:
    data = small_model.read_bytes()
    # Mutations in tensor data are caught by the checksum; aim half of them at the header.
    mutated = _mutate(data, mutations, 0, _header_len(data) if in_header else None)
    path = work / "mutated.patchcore"
    path.write_bytes(mutated)
    _check_model(path)


_META_TARGETS = [
    "config.crop", "config.resize", "config.k", "config.mean", "config.std", "config.layers",
    "config.backbone", "config.embedding.mode", "config.embedding.patch_size", "config.embedding.pretrain_dim",
    "config.embedding.target_dim", "config.embedding", "config", "bank_rows", "feature_dim",
    "threshold", "threshold.image", "threshold.pixel", "training", "format_version", "bn_warmup",
]
_near_valid = st.one_of(
    st.integers(-2, 300), st.sampled_from([0, 1, 3, 32, 40, 64, 2**31, 2**63, -(2**63)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(-2, 2), min_size=3, max_size=3),
    st.sampled_from(["native", "reference", "resnet18", "layer1", "layer4", ["layer1"], ["layer1", "layer2"]]),
    _json_value,
)


@settings(FUZZ, max_examples=100)
@given(edits=st.lists(st.tuples(st.sampled_from(_META_TARGETS), _near_valid), min_size=1, max_size=3))
def test_model_random_metadata_values(work: Path, small_model: Path, edits: list[tuple[str, Any]]) -> None:
    # Re-encoded with the original (valid) checksum: only the metadata is hostile.
    from safetensors.torch import save

    tensors, meta = read_model_file(small_model)
    for dotted, value in edits:
        node: Any = meta
        *parents, leaf = dotted.split(".")
        for key in parents:
            if not isinstance(node, dict):
                break
            node = node.setdefault(key, {})
        if isinstance(node, dict):
            node[leaf] = value
    path = work / "meta.patchcore"
    path.write_bytes(save(tensors, metadata={"patchcore_gui": json.dumps(meta)}))
    _check_model(path)
