"""`textenc-fixed512`: the same text encoder and weights, every text padded to 512 tokens in preprocess."""
from __future__ import annotations

from pathlib import Path

from benchmarks.plugins.textenc.model import build, init_random
from benchmarks.plugins.textenc.task import TextTask, preprocess_padded
from modelzoo.api import ModelEntry, hookimpl, load_manifest

MANIFEST = load_manifest(Path(__file__).resolve().parent / "plugin.toml")


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=build, init_random=init_random, preprocess=preprocess_padded,
                        task=TextTask()))
