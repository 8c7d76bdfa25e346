"""Image discovery, for tasks whose samples are image files."""
from __future__ import annotations

from pathlib import Path

from modelzoo.errors import UserError

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


def find_images(directory: Path) -> list[Path]:
    """Image files directly in `directory` (any case of extension), sorted by name."""
    if not directory.is_dir():
        raise UserError(f"image directory {directory} does not exist; check --data")
    # Symlinks are followed (a data dir is often a farm of links into a shared store); a dangling
    # one is kept, so that reading it fails loudly instead of the image silently going missing.
    images = sorted((p for p in directory.iterdir()
                     if p.suffix.lower() in IMAGE_SUFFIXES and (p.is_file() or p.is_symlink())),
                    key=lambda p: p.name)
    if not images:
        raise UserError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {directory}; "
                        "check --data")
    return images
