"""LV-ViT-S built from upstream TokenLabeling code (the ModelZoo route), instead of the built-in model.

`build_upstream` imports ``tlt/models/lvvit.py`` from a checkout made by
``modelzoo.source.prepare_source`` (or any TokenLabeling checkout) and constructs ``LV_ViT`` with the
``lvvit_s`` arguments. Nothing of upstream lives in this project.

Softmax layout: the plugin's patch (patches/LV_Vit.patch) IS the Ascend layout, so the checkout
decides it, not `variant`. A checkout prepared with the patch gives the "ascend" graph for both
variants; its "standard" model is the same function and differs from the unpatched one only by float
rounding (about 1e-6 on the logits). An unpatched checkout gives the standard layout for both.
"""
from __future__ import annotations

import contextlib
import importlib
import logging
import sys
import types
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from modelzoo.errors import UserError
from modelzoo.source import read_marker

log = logging.getLogger(__name__)

UPSTREAM_FILES = ("tlt/models/layers.py", "tlt/models/lvvit.py")
PATCH_NAME = "LV_Vit.patch"
# upstream lvvit_s (tlt/models/lvvit.py); img_size 224 and 1000 classes are its defaults.
LVVIT_S_ARGS = {"patch_size": 16, "embed_dim": 384, "depth": 16, "num_heads": 6, "mlp_ratio": 3.0,
                "p_emb": "4_2", "skip_lam": 2.0, "return_dense": True, "mix_token": True}


def build_upstream(checkout: Path, variant: str) -> torch.nn.Module:
    """Upstream LV-ViT-S from `checkout`, random weights, eval mode (see the module docstring
    for what `variant` can and cannot change)."""
    checkout = Path(checkout)
    missing = [f for f in UPSTREAM_FILES if not (checkout / f).is_file()]
    if missing:
        raise UserError(f"{checkout} is not a TokenLabeling checkout (no {missing[0]}); "
                        "prepare one with 'modelzoo source lvvit'")
    _note_layout(checkout, variant)
    module = _import_lvvit(checkout / "tlt" / "models")
    return module.LV_ViT(**LVVIT_S_ARGS).eval()


def _note_layout(checkout: Path, variant: str) -> None:
    marker = read_marker(checkout)
    patched = bool(marker) and any(p["path"].endswith(PATCH_NAME) for p in marker.get("patches", []))
    if variant == "ascend" and not patched:
        log.warning("%s was not prepared with %s: the upstream model has the standard softmax layout, "
                    "not the Ascend one", checkout, PATCH_NAME)
    elif variant != "ascend" and patched:
        log.info("%s has %s applied: the model has the Ascend softmax layout (same values up to "
                 "float rounding)", checkout, PATCH_NAME)


def _import_lvvit(models_dir: Path) -> types.ModuleType:
    """Import ``models_dir/lvvit.py`` (with its sibling layers.py) as a private package.

    The package skips ``tlt/__init__.py`` (its data and loss modules need more than the model),
    gets a unique name so two checkouts never share modules, and stays in sys.modules so that
    its classes can be pickled.
    """
    name = f"_modelzoo_upstream_tokenlabeling_{uuid.uuid4().hex}"
    package = types.ModuleType(name)
    package.__path__ = [str(models_dir)]
    sys.modules[name] = package
    try:
        with _no_timm_registration(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # timm 1.x deprecation notices for upstream's import paths
            return importlib.import_module(f"{name}.lvvit")
    # Old upstream code against the installed timm can fail in many ways: report any in one line.
    except Exception as exc:  # noqa: BLE001
        for key in [k for k in sys.modules if k.split(".")[0] == name]:
            del sys.modules[key]
        raise UserError(f"cannot import upstream {models_dir / 'lvvit.py'} ({type(exc).__name__}: {exc}); "
                        "check the checkout and the installed timm") from None


@contextlib.contextmanager
def _no_timm_registration() -> Iterator[None]:
    """Keep upstream's @register_model from adding vit/lvvit_* to timm's global registry (it would
    clash with timm's own names), and write no bytecode into the user's checkout."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Importing from timm.models.registry is deprecated"
        from timm.models import registry

    original, dont_write = registry.register_model, sys.dont_write_bytecode
    registry.register_model = lambda fn: fn
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        registry.register_model, sys.dont_write_bytecode = original, dont_write
