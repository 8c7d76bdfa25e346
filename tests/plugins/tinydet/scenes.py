"""Pictures for tinydet: dark noisy backgrounds of several sizes with up to three bright
rectangles, one per class (red, green, blue), and their COCO instances annotations."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

SIZES = [(96, 64), (64, 128), (48, 80), (120, 90), (64, 64), (150, 60)]  # (width, height)


def _rectangle(rng: np.random.Generator, width: int, height: int, taken: list) -> list[int] | None:
    """[x, y, w, h] inside the picture, clear of the rectangles already placed (None after a few tries)."""
    for _ in range(50):
        w = int(rng.integers(width // 6, width // 2))
        h = int(rng.integers(height // 6, height // 2))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        if all(x + w + 2 <= a or a + c + 2 <= x or y + h + 2 <= b or b + d + 2 <= y for a, b, c, d in taken):
            return [x, y, w, h]
    return None


def write_scenes(directory: Path, count: int, seed: int) -> Path:
    """`count` pictures in directory/images and directory/annotations.json; returns the directory."""
    rng = np.random.default_rng(seed)
    (directory / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        width, height = SIZES[i % len(SIZES)]
        pixels = rng.integers(0, 40, size=(height, width, 3)).astype(np.uint8)
        taken = []
        for label in rng.permutation(3)[:int(rng.integers(1, 4))]:
            box = _rectangle(rng, width, height, taken)
            if box is None:
                continue
            taken.append(box)
            x, y, w, h = box
            pixels[y:y + h, x:x + w] = 30
            pixels[y:y + h, x:x + w, label] = 230
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                                "bbox": box, "area": w * h, "iscrowd": 0})
        name = f"scene{i:02d}.png"
        Image.fromarray(pixels).save(directory / "images" / name)
        images.append({"id": i + 1, "file_name": name, "width": width, "height": height})
    categories = [{"id": c + 1, "name": name} for c, name in enumerate(("red", "green", "blue"))]
    (directory / "annotations.json").write_text(json.dumps(
        {"images": images, "annotations": annotations, "categories": categories}, indent=1))
    return directory


if __name__ == "__main__":  # the demo set: python -m tests.plugins.tinydet.scenes
    write_scenes(Path(__file__).resolve().parent / "demo", 6, seed=0)
