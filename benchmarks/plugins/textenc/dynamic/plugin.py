"""`textenc-dynamic`: the text encoder on a dynamic `seq` axis; each batch is padded to its longest text."""
from __future__ import annotations

from pathlib import Path

from benchmarks.plugins.textenc.model import build, init_random
from benchmarks.plugins.textenc.task import (
    TextTask,
    collate_to_longest,
    preprocess_tokens,
)
from modelzoo.api import ModelEntry, hookimpl, load_manifest

MANIFEST = load_manifest(Path(__file__).resolve().parent / "plugin.toml")


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=build, init_random=init_random, preprocess=preprocess_tokens,
                        task=TextTask(), collate=collate_to_longest))
