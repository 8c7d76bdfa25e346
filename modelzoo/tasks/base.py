"""A fingerprint of the samples a run evaluates (the task types themselves are in modelzoo.core)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelzoo.core import Sample


def samples_digest(samples: list[Sample]) -> str:
    """A fingerprint of what a run evaluates: keys, targets, and each source file's name and size
    (cheap for 50,000 files) or value. Resume refuses to mix results of other data."""
    h = hashlib.sha256()
    for sample in samples:
        source = sample.source
        if isinstance(source, Path):
            try:
                source = f"{source.name}\0{source.stat().st_size}"
            except OSError:  # a dangling link: reading it will fail loudly, not here
                source = f"{source.name}\0missing"
        h.update(json.dumps([sample.key, source, sample.target], default=str).encode() + b"\n")
    return h.hexdigest()[:16]
