"""LV-ViT eval preprocessing: equal to torchvision's pipeline and to ModelZoo's float64 formula."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageOps

from modelzoo.errors import UserError
from modelzoo_lvvit.preprocess import preprocess_image

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


# --- an independent reference, written from the timm/torchvision rules ----------------------


def reference_crop(rgb: Image.Image, resize: int = 248, crop: int = 224) -> np.ndarray:
    """Short-side resize + center crop with PIL's own crop; uint8 HWC. Valid while no padding is needed."""
    w, h = rgb.size
    if w <= h:
        size = (resize, int(resize * h / w))
    else:
        size = (int(resize * w / h), resize)
    resized = rgb.resize(size, Image.Resampling.BICUBIC)
    left = int(round((size[0] - crop) / 2.0))
    top = int(round((size[1] - crop) / 2.0))
    assert left >= 0 and top >= 0, "this reference does not pad"
    return np.asarray(resized.crop((left, top, left + crop, top + crop)))


def modelzoo_normalise(crop_hwc: np.ndarray) -> np.ndarray:
    """ModelZoo's formula: float64 (x - mean*255) / (std*255), then float32, CHW."""
    x = crop_hwc.transpose(2, 0, 1).astype(np.float64)
    mean255 = np.array(MEAN).reshape(3, 1, 1) * 255
    std255 = np.array(STD).reshape(3, 1, 1) * 255
    return ((x - mean255) / std255).astype(np.float32)


def expected_for(path: Path) -> np.ndarray:
    return modelzoo_normalise(reference_crop(Image.open(path).convert("RGB")))


def noise_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    # A gradient plus noise: flat images would hide resize/crop offset mistakes.
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(width, 1), y * 255 // max(height, 1), (x + y) % 256], axis=-1)
    pixels = np.clip(base + rng.integers(-40, 41, size=base.shape), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


# --- sample files in many modes -------------------------------------------------------------

# name -> (mode Pillow reports when opening the file, how to make it)
SAMPLES = {
    "rgb.jpg": ("RGB", lambda: noise_rgb(500, 375)),
    "portrait.jpg": ("RGB", lambda: noise_rgb(375, 500, seed=1)),
    "gray.jpg": ("L", lambda: noise_rgb(320, 240, seed=2).convert("L")),
    "cmyk.jpg": ("CMYK", lambda: noise_rgb(320, 240, seed=3).convert("CMYK")),
    "palette.png": ("P", lambda: noise_rgb(300, 260, seed=4).quantize(64)),
    "rgba.png": ("RGBA", lambda: _rgba()),
    "gray_alpha.png": ("LA", lambda: noise_rgb(260, 300, seed=5).convert("LA")),
    "bilevel.png": ("1", lambda: noise_rgb(300, 250, seed=6).convert("1")),
    "deep.png": ("I;16", lambda: _sixteen_bit()),
    "tiny.png": ("RGB", lambda: noise_rgb(1, 1, seed=7)),
    "sliver_tall.png": ("RGB", lambda: noise_rgb(5, 300, seed=8)),
    "sliver_wide.png": ("RGB", lambda: noise_rgb(300, 5, seed=9)),
    # Long side resized to 249 / 253: the crop offset is 12.5 / 14.5, where round-half-to-even
    # (Python's round, which torchvision uses) differs from rounding half up.
    "offset_12_5.png": ("RGB", lambda: noise_rgb(249, 248, seed=10)),
    "offset_14_5.png": ("RGB", lambda: noise_rgb(248, 253, seed=11)),
    "square.png": ("RGB", lambda: noise_rgb(224, 224, seed=12)),
    "already_248.png": ("RGB", lambda: noise_rgb(248, 300, seed=13)),
}


def _rgba() -> Image.Image:
    image = noise_rgb(400, 300, seed=14).convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((400, 300)))
    return image


def _sixteen_bit() -> Image.Image:
    # Values above 255 too: convert('RGB') clips them, and we must clip the same way.
    y, x = np.mgrid[0:240, 0:320]
    return Image.fromarray(((x * 7 + y * 3) % 600).astype(np.uint16))


@pytest.fixture(scope="module")
def samples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    for name, (_, make) in SAMPLES.items():
        make().save(folder / name)
    return folder


def test_output_layout(samples: Path) -> None:
    out = preprocess_image(samples / "rgb.jpg")
    assert out.shape == (3, 224, 224)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_mode_equals_convert_rgb_then_pipeline(samples: Path, name: str) -> None:
    path = samples / name
    assert Image.open(path).mode == SAMPLES[name][0]  # the sample really is in that mode
    np.testing.assert_array_equal(preprocess_image(path), expected_for(path))


def test_accepts_str_paths(samples: Path) -> None:
    np.testing.assert_array_equal(
        preprocess_image(str(samples / "gray.jpg")), expected_for(samples / "gray.jpg")
    )


def test_very_large_image(tmp_path: Path) -> None:
    path = tmp_path / "large.jpg"
    y, x = np.mgrid[0:3000, 0:4000]
    pixels = np.stack([x % 256, y % 256, (x // 16 + y // 16) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(path, quality=90)
    np.testing.assert_array_equal(preprocess_image(path), expected_for(path))


def test_exif_orientation_is_ignored_like_modelzoo(tmp_path: Path) -> None:
    image = noise_rgb(400, 300, seed=20)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    rotated_tag, plain = tmp_path / "exif6.jpg", tmp_path / "plain.jpg"
    image.save(rotated_tag, exif=exif, quality=95)
    image.save(plain, quality=95)
    assert Image.open(rotated_tag).getexif()[0x0112] == 6

    out = preprocess_image(rotated_tag)

    # Same pixels as the file without the tag: the stored (unrotated) pixels are used...
    np.testing.assert_array_equal(out, preprocess_image(plain))
    np.testing.assert_array_equal(out, expected_for(plain))
    # ...and that is visibly not what an EXIF-aware viewer would show.
    upright = ImageOps.exif_transpose(Image.open(rotated_tag)).convert("RGB")
    assert upright.size == (300, 400)
    assert np.abs(out - modelzoo_normalise(reference_crop(upright))).max() > 0.5


# --- against torchvision ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def tv_transforms():  # type: ignore[no-untyped-def]
    return pytest.importorskip("torchvision.transforms")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_crop_equals_torchvision_and_modelzoo_formula_is_bit_exact(
    samples: Path, name: str, tv_transforms  # type: ignore[no-untyped-def]
) -> None:
    T = tv_transforms
    rgb = Image.open(samples / name).convert("RGB")
    resize_crop = T.Compose([T.Resize(248, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(224)])
    tv_crop = np.asarray(resize_crop(rgb))
    # The uint8 crop from torchvision, pushed through ModelZoo's float64 formula, must give
    # exactly our output: any resize/crop difference would change whole pixels.
    np.testing.assert_array_equal(preprocess_image(samples / name), modelzoo_normalise(tv_crop))


@pytest.mark.parametrize("name", ["rgb.jpg", "portrait.jpg", "cmyk.jpg", "offset_14_5.png"])
def test_torchvision_float_pipeline_agrees_within_two_ulp(
    samples: Path, name: str, tv_transforms  # type: ignore[no-untyped-def]
) -> None:
    T = tv_transforms
    pipeline = T.Compose(
        [
            T.Resize(248, interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(224),
            T.ToTensor(),
            T.Normalize(MEAN, STD),
        ]
    )
    theirs = pipeline(Image.open(samples / name).convert("RGB")).numpy()
    ours = preprocess_image(samples / name)
    # torchvision normalises in float32 ((x/255 - mean)/std), ModelZoo in float64: the values
    # (|x| < 2.7) differ by at most 2 float32 ulps there, 2 * 2**-22 = 4.77e-7 (measured: 4.77e-7).
    assert np.abs(ours - theirs).max() <= 2 * 2.0**-22


def test_float32_vs_float64_normalisation_over_all_levels(tv_transforms) -> None:  # type: ignore[no-untyped-def]
    # All 256 levels in every channel: the worst case of the difference above, not a sample.
    torch = pytest.importorskip("torch")
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    crop = np.stack([levels] * 3, axis=-1)
    theirs = tv_transforms.Normalize(MEAN, STD)(torch.from_numpy(crop.transpose(2, 0, 1)).float() / 255).numpy()
    difference = np.abs(modelzoo_normalise(crop) - theirs).max()
    assert 0 < difference <= 2 * 2.0**-22


@pytest.mark.parametrize(("resize", "crop"), [(100, 124), (101, 124), (100, 125)])
def test_padding_matches_torchvision_when_crop_exceeds_image(
    samples: Path, resize: int, crop: int, tv_transforms  # type: ignore[no-untyped-def]
) -> None:
    # Never happens with 248/224, but the function takes any sizes: pad with zeros like
    # torchvision's CenterCrop (smaller half on the left/top).
    T = tv_transforms
    rgb = Image.open(samples / "rgb.jpg").convert("RGB")
    tv_crop = np.asarray(
        T.Compose([T.Resize(resize, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(crop)])(rgb)
    )
    ours = preprocess_image(samples / "rgb.jpg", resize=resize, crop=crop)
    assert ours.shape == (3, crop, crop)
    np.testing.assert_array_equal(ours, modelzoo_normalise(tv_crop))


# --- unreadable files -------------------------------------------------------------------------


def assert_cannot_read(path: Path) -> None:
    with pytest.raises(UserError) as excinfo:
        preprocess_image(path)
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message and "--skip-invalid" in message


def test_truncated_jpeg(samples: Path, tmp_path: Path) -> None:
    data = (samples / "rgb.jpg").read_bytes()
    for cut in (len(data) // 2, len(data) - 2):  # half the scan / just the end marker missing
        path = tmp_path / f"cut{cut}.JPEG"
        path.write_bytes(data[:cut])
        Image.open(path)  # the header is fine: only decoding the pixels can notice
        assert_cannot_read(path)


def test_truncated_png(samples: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes((samples / "rgba.png").read_bytes()[:2000])
    assert_cannot_read(path)


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.JPEG"
    path.write_bytes(b"")
    assert_cannot_read(path)


def test_text_file_named_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "notes.JPEG"
    path.write_text("this is not an image\n")
    assert_cannot_read(path)


def test_missing_file_and_folder(tmp_path: Path) -> None:
    assert_cannot_read(tmp_path / "missing.JPEG")
    (tmp_path / "folder.JPEG").mkdir()
    assert_cannot_read(tmp_path / "folder.JPEG")


def test_decompression_bomb_limit_stays_on(monkeypatch: pytest.MonkeyPatch, samples: Path) -> None:
    assert Image.MAX_IMAGE_PIXELS is not None  # importing the module must not switch it off
    # 500x375 = 187,500 pixels is more than twice this limit: Pillow refuses to open it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    assert_cannot_read(samples / "rgb.jpg")


def test_extreme_aspect_ratio_is_refused_before_resizing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # 2x100 opens fine under this limit, but resizing it to 248x12400 would exceed it.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 10_000)
    path = tmp_path / "sliver.png"
    noise_rgb(2, 100).save(path)
    assert_cannot_read(path)


def test_unknown_interpolation(samples: Path) -> None:
    with pytest.raises(UserError):
        preprocess_image(samples / "rgb.jpg", interpolation="cubic-ish")


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "fuzz.JPEG"


MAGIC = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"BM", b"II*\x00", b"RIFF", b""]


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about corrupt EXIF on the way
@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(magic=st.sampled_from(MAGIC), body=st.binary(max_size=200))
def test_damaged_files_only_raise_user_error(scratch: Path, magic: bytes, body: bytes) -> None:
    scratch.write_bytes(magic + body)
    try:
        out = preprocess_image(scratch)
    except UserError as exc:
        assert "\n" not in str(exc)
    else:
        assert out.shape == (3, 224, 224)


def test_module_does_not_import_torch() -> None:
    # It runs in worker processes: importing torch there costs seconds and memory per worker.
    import subprocess

    code = "import sys, modelzoo_lvvit.preprocess; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_animated_gif_uses_its_first_frame(tmp_path: Path) -> None:
    """convert('RGB') decodes the first frame only, as ModelZoo's script would."""
    frames = [noise_rgb(300, 260, seed=20 + i).quantize(64) for i in range(3)]
    path = tmp_path / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as image:
        assert getattr(image, "n_frames", 1) == 3  # really animated
    first = tmp_path / "first.png"
    frames[0].convert("RGB").save(first)
    np.testing.assert_array_equal(preprocess_image(path), preprocess_image(first))


def test_every_uint8_level_normalises_exactly_as_modelzoos_float64_formula(tmp_path: Path) -> None:
    # The normalisation is a per-level lookup: every one of the 256 levels in every channel,
    # with different levels per channel, must give the float64 formula's float32 bit for bit.
    y, x = np.mgrid[0:224, 0:224]
    pixels = np.stack([(x + y) % 256, (3 * x + y) % 256, (255 - x - 5 * y) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(pixels).save(tmp_path / "levels.png")
    ours = preprocess_image(tmp_path / "levels.png", resize=224, crop=224)  # no resampling at this size
    np.testing.assert_array_equal(ours, modelzoo_normalise(pixels))
    assert all(len(np.unique(pixels[..., c])) == 256 for c in range(3))


def test_in_threads_every_image_gets_its_own_exact_pipeline(samples: Path) -> None:
    """The plugin runs this preprocess in threads: many images at once give each its own result."""
    from modelzoo.core import Sample
    from modelzoo.stream import Preprocessor

    paths = sorted(samples.iterdir()) * 4
    with Preprocessor(preprocess_image, [Sample(str(i), p) for i, p in enumerate(paths)], workers=4, window=16,
                      plugin="modelzoo_lvvit", threads=True) as stream:
        for (sample, array, error), path in zip(stream, paths, strict=True):
            assert error is None
            np.testing.assert_array_equal(array, expected_for(path))
