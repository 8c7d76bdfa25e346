"""Writes the demo set shipped in modelzoo_lvvit/demo: generated pictures, not photographs.

They exist so that `modelzoo run lvvit` works on a fresh machine with no dataset; their labels
are arbitrary classes, so the accuracy on them means nothing. Sizes and modes vary on purpose
(landscape, portrait, square, grayscale, PNG with alpha) to exercise the preprocessing.
Run: python scripts/make_demo_data.py
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent.parent / "modelzoo_lvvit" / "demo"
# (file name, size, mode, class)
PICTURES = [
    ("ILSVRC2012_val_00000001.JPEG", (500, 375), "RGB", 65),
    ("ILSVRC2012_val_00000002.JPEG", (375, 500), "RGB", 970),
    ("ILSVRC2012_val_00000003.JPEG", (640, 480), "RGB", 230),
    ("ILSVRC2012_val_00000004.JPEG", (300, 300), "L", 809),
    ("ILSVRC2012_val_00000005.JPEG", (500, 333), "RGB", 516),
    ("ILSVRC2012_val_00000006.JPEG", (333, 500), "RGB", 57),
    ("ILSVRC2012_val_00000007.png", (400, 400), "RGBA", 334),
    ("ILSVRC2012_val_00000008.JPEG", (800, 600), "RGB", 415),
]


def picture(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    base = np.stack([np.sin(x * rng.uniform(2, 9) + c) * np.cos(y * rng.uniform(2, 9) - c)
                     for c in rng.uniform(0, 3, 3)], axis=-1)
    pixels = ((base + 1) * 110 + rng.normal(0, 6, (h, w, 3))).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.integers(0, w - 20), rng.integers(0, h - 20)
        box = [x0, y0, x0 + rng.integers(10, w // 2), y0 + rng.integers(10, h // 2)]
        draw.ellipse(box, fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image


def main() -> None:
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for seed, (name, size, mode, cls) in enumerate(PICTURES):
        image = picture(size, seed).convert(mode)
        if mode == "RGBA":
            image.putalpha(200)
            image.save(OUT / "images" / name)
        else:
            image.save(OUT / "images" / name, quality=90)
        lines.append(f"{name} {cls}\n")
    (OUT / "val_label.txt").write_text("".join(lines))


if __name__ == "__main__":
    main()
