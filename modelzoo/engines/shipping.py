"""Artifacts built once on the driver and carried to the cluster's nodes through Ray's object store.

The driver builds what every node can share (`Backend.prepare`: the ONNX, an int8 model) and packs
the cache files it touched. A node unpacks them into its own cache and looks artifacts up under the
driver's key, so the files are found there as built; what depends on the node's chip (an Ascend
.om) is built by the node itself, once, into that cache.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelzoo.artifacts import Artifacts
from modelzoo.cache import Cache
from modelzoo.core import ModelEntry
from modelzoo.weights import Weights, modelzoo_home

SIDECARS = (".key.json", ".parity.json")


@dataclass
class Shipment:
    files: dict[str, bytes]  # cache file name -> contents (artifacts and their sidecars)
    key: dict[str, Any]      # the driver's Artifacts.key(): every node looks artifacts up under it
    variant: str
    simplify: bool
    weights: Weights
    weights_ref: Any = None  # ObjectRef of the checkpoint's bytes; fetched only to build a torch model
    upstream: Path | None = None
    parity_check: bool = True  # the driver's: a node judges the shipped parity as it did


def pack(artifacts: Artifacts, weights_ref: Any) -> Shipment:
    """The cache files `artifacts` handed out so far (run `Backend.prepare` first)."""
    root = artifacts.cache.root
    files = {}
    for name in artifacts.cache.reused:
        for file in [name, *(name + suffix for suffix in SIDECARS)]:
            if (root / file).is_file():
                files[file] = (root / file).read_bytes()
    return Shipment(files, artifacts.key(), artifacts.variant, artifacts.simplify, artifacts.weights,
                    weights_ref, artifacts.upstream, artifacts.parity_check)


def node_cache() -> Path:
    """This node's artifact cache, kept between runs."""
    return modelzoo_home() / "cluster-cache"


class ShippedArtifacts(Artifacts):
    """A node's Artifacts: the driver's files and key; its checkpoint fetched only when needed."""

    def __init__(self, entry: ModelEntry, shipment: Shipment, cache: Cache):
        super().__init__(entry, shipment.weights, cache, variant=shipment.variant, simplify=shipment.simplify,
                         quiet=True, upstream=shipment.upstream, parity_check=shipment.parity_check)
        self.shipment = shipment
        for name, data in shipment.files.items():
            target = cache.root / name
            if not target.exists():
                tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
                tmp.write_bytes(data)
                os.replace(tmp, target)  # actors on one node may unpack at once

    def key(self, **extra: Any) -> dict[str, Any]:
        return {**self.shipment.key, **extra}

    def torch_model(self):
        if not self.weights.random and not self.weights.path.is_file():
            import ray

            local = self.cache.root / f"weights-{self.weights.sha256[:16]}.pth"
            if not local.exists():
                tmp = local.with_name(f".{local.name}.{os.getpid()}.tmp")
                tmp.write_bytes(ray.get(self.shipment.weights_ref))
                os.replace(tmp, local)
            self.weights = replace(self.weights, path=local)
        return super().torch_model()
