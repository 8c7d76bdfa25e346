"""LV-ViT evaluation preprocessing, identical to ModelZoo's LV-Vit preprocess (timm 0.4.5 eval).

Runs in worker processes, so it imports only Pillow and numpy (no torch).
"""
from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import numpy as np
from PIL import Image

from modelzoo.errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_INTERPOLATIONS = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
}


def preprocess_image(
    path: str | os.PathLike[str],
    *,
    resize: int = 248,
    crop: int = 224,
    interpolation: str = "bicubic",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Return the model input for one image: a C-contiguous float32 array (3, crop, crop).

    The ModelZoo / timm-0.4.5 eval pipeline, step for step:
    `Image.open(path).convert('RGB')`; resize so the SHORT side is `resize` (long side
    `int(resize * long / short)`, PIL resampling); torchvision-style center crop (zero padding
    when the image is smaller than the crop); uint8 HWC -> CHW; `(x - mean*255) / (std*255)` in
    float64, then float32 (looked up per uint8 value: the same numbers, computed once).

    The EXIF orientation tag is IGNORED, as in ModelZoo (Image.open does not apply it): a
    phone photo stored sideways is fed sideways. Pillow's decompression-bomb limit stays on.
    Any file that cannot be read or decoded raises a one-line `UserError`.
    """
    if interpolation not in _INTERPOLATIONS:
        raise UserError(
            f"unknown interpolation {interpolation!r}; use one of {', '.join(_INTERPOLATIONS)}"
        )
    try:
        with Image.open(path) as image:
            # load()/convert() decode the whole file, so a truncated JPEG raises OSError here
            # (Pillow's LOAD_TRUNCATED_IMAGES is left off on purpose). An RGB file needs no
            # conversion: convert() would only copy it (3% of the preprocessing time).
            if image.mode == "RGB":
                image.load()
                rgb = image
            else:
                rgb = image.convert("RGB")
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        # OSError covers missing files, unknown formats (UnidentifiedImageError) and truncated
        # data; some Pillow decoders report damage as SyntaxError/ValueError/EOFError.
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise UserError(f"cannot read image {path}: {reason}; remove it or pass --skip-invalid") from None

    pixels = _resize_and_crop(rgb, path, resize, crop, _INTERPOLATIONS[interpolation])
    chw = pixels.transpose(2, 0, 1)
    table = _normalisation_table(tuple(mean), tuple(std))
    out = np.empty(chw.shape, dtype=np.float32)
    for channel in range(3):
        # mode="clip" skips the bounds check, which costs more than the lookup itself; a uint8
        # index never leaves the 256-entry table.
        np.take(table[channel], chw[channel], out=out[channel], mode="clip")
    return out


@functools.lru_cache(maxsize=4)
def _normalisation_table(mean: tuple[float, ...], std: tuple[float, ...]) -> np.ndarray:
    """float32((v - mean*255) / (std*255)) in float64 for every uint8 value v, per channel.

    A uint8 pixel has 256 possible values, so looking the result up gives exactly the float64
    formula's output at a tenth of its cost (it is a tenth of an image's preprocessing time).
    """
    values = np.arange(256, dtype=np.float64)[None, :]
    mean255 = np.asarray(mean, dtype=np.float64)[:, None] * 255
    std255 = np.asarray(std, dtype=np.float64)[:, None] * 255
    return ((values - mean255) / std255).astype(np.float32)


def _resize_and_crop(
    rgb: Image.Image, path: str | os.PathLike[str], resize: int, crop: int, resample: int
) -> np.ndarray:
    """Short-side resize then center crop; returns uint8 HWC (crop, crop, 3)."""
    width, height = rgb.size
    short, long = (width, height) if width <= height else (height, width)
    # Same expression (and float rounding) as torchvision's Resize(int) size rule.
    new_short, new_long = resize, int(resize * long / short)
    new_width, new_height = (new_short, new_long) if width <= height else (new_long, new_short)
    # A sliver (say 1x300000) passes the decompression-bomb check but would blow up when
    # resized; refuse at the same size Pillow itself refuses to open.
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and new_width * new_height > 2 * limit:
        raise UserError(
            f"cannot read image {path}: aspect ratio {width}x{height} is too extreme to resize; "
            "remove it or pass --skip-invalid"
        )
    if (new_width, new_height) != (width, height):
        rgb = rgb.resize((new_width, new_height), resample)
    pixels = np.asarray(rgb, dtype=np.uint8)

    # torchvision CenterCrop: zero-pad (left/top get the smaller half) up to the crop size...
    pad_h, pad_w = max(crop - new_height, 0), max(crop - new_width, 0)
    if pad_h or pad_w:
        pixels = np.pad(
            pixels, ((pad_h // 2, (pad_h + 1) // 2), (pad_w // 2, (pad_w + 1) // 2), (0, 0))
        )
    # ...then cut the middle, rounding the offset with Python's round (half to even).
    height, width = pixels.shape[:2]
    top = int(round((height - crop) / 2.0))
    left = int(round((width - crop) / 2.0))
    return pixels[top : top + crop, left : left + crop]
