"""The word for what a model counts, decided here alone: "images" for a model whose inputs are
pictures (an input whose layout has H and W axes, e.g. NCHW), "samples" for any other (a text
model's token ids, a table's rows). The console, report.json's `measures`, progress bars and
`modelzoo bench` all speak of it, so that a text model's run never reports JPEGs or img/s.
"""
from __future__ import annotations

from dataclasses import dataclass

from modelzoo.manifest import Manifest


@dataclass(frozen=True)
class Unit:
    plural: str   # "images": report.json's `unit`, the console's row, measures' text
    rate: str     # "img/s": throughput on the console and in bench.md
    tick: str     # "img": a progress bar's unit
    source: str   # what a sample starts as, for "... to prediction"


IMAGES = Unit("images", "img/s", "img", "image file")
SAMPLES = Unit("samples", "samples/s", "sample", "sample")


def unit_of(manifest: Manifest) -> Unit:
    """IMAGES when some input is laid out as a picture, else SAMPLES."""
    return IMAGES if any({"H", "W"} <= set(t.layout.upper()) for t in manifest.inputs) else SAMPLES


def unit_named(plural: str | None) -> Unit:
    """The unit a report or bench file names (files written before it was named: images)."""
    return SAMPLES if plural == SAMPLES.plural else IMAGES
