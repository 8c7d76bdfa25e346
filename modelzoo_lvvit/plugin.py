"""The LV-ViT plugin: registers LV-ViT-S with the modelzoo runner."""
from __future__ import annotations

import functools
from pathlib import Path

from modelzoo.api import ModelEntry, hookimpl, load_manifest
from modelzoo_lvvit.preprocess import preprocess_image

HERE = Path(__file__).resolve().parent
# plugin.toml lives at the top of the repository; the package holds a link to it so that an
# installed wheel carries the same file.
MANIFEST_PATH = HERE / "plugin.toml"
DEMO_DATA = HERE / "demo"


def build(variant: str):
    """LV-ViT-S for an export variant: "ascend" lays attention softmax out as ModelZoo's patch does."""
    from modelzoo_lvvit.model import build_lvvit_s

    return build_lvvit_s(softmax_layout="ascend" if variant == "ascend" else "standard")


def build_upstream(checkout: Path, variant: str):
    """LV-ViT-S from upstream TokenLabeling code; the checkout's patches decide the softmax layout."""
    from modelzoo_lvvit.upstream import build_upstream as build

    return build(checkout, variant)


def init_random(model, seed: int) -> None:
    from modelzoo_lvvit.model import init_random_weights

    init_random_weights(model, seed)


@hookimpl
def modelzoo_register_models(register):
    manifest = load_manifest(MANIFEST_PATH)
    register(ModelEntry(
        manifest=manifest,
        build=build,
        init_random=init_random,
        preprocess=functools.partial(preprocess_image, **manifest.preprocess),
        preprocess_in_threads=True,  # Pillow and numpy release the GIL for decoding, resizing, lookups
        demo_data=DEMO_DATA,
        build_upstream=build_upstream,
    ))
