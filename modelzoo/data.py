"""Which images a run evaluates, and the label of each."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from modelzoo.errors import UserError
from modelzoo.labels import image_key, read_labels
from modelzoo.manifest import Manifest

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}


@dataclass(frozen=True)
class Dataset:
    root: Path
    images: list[Path]          # sorted by file name
    labels: dict[str, int]      # image key -> class
    label_file: Path
    demo: bool

    def to_report(self) -> dict:
        return {"path": str(self.root), "labels": str(self.label_file), "demo": self.demo}


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


def resolve_dataset(manifest: Manifest, data: Path | None, labels: Path | None,
                    demo_data: Path | None, limit: int | None = None) -> Dataset:
    """The seed's layout (DIR/images + DIR/<label file>), a flat DIR with --labels, or the demo set."""
    demo = data is None
    if demo:
        if demo_data is None:
            raise UserError(f"model '{manifest.name}' ships no demo data; pass --data DIR")
        data = demo_data
    data = Path(data)
    image_dir = data / manifest.dataset["images"]
    if not image_dir.is_dir():
        image_dir = data
    label_file = Path(labels) if labels else data / manifest.dataset["labels"]
    if not label_file.is_file():
        raise UserError(f"label file {label_file} does not exist; pass --labels FILE "
                        f"(lines: {manifest.dataset['label_format']})")
    images = find_images(image_dir)
    if limit is not None:
        images = images[:limit]
    by_name = read_labels(label_file, manifest.num_classes)
    classes = {image_key(name): cls for name, cls in by_name.items()}
    unlabelled = [p.name for p in images if image_key(p.name) not in classes]
    if unlabelled:
        more = f" and {len(unlabelled) - 1} more" if len(unlabelled) > 1 else ""
        raise UserError(f"image {image_dir / unlabelled[0]}{more} has no label in {label_file}; "
                        "add it to the label file or remove the image")
    return Dataset(data.resolve(), images, classes, label_file.resolve(), demo)
