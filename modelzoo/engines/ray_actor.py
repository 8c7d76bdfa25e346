"""One backend session on one node (one NPU, or a share of a CPU node), fed batches by the driver.

Preprocessing runs inside the actor, not in Ray tasks beside it: a task would need CPUs that the
node has reserved for its actors, and shipping preprocessed arrays through the object store costs
more than the decoding. The actor takes two calls at once, so one batch is decoded while the
previous one runs on the device (a lock keeps the session to one batch at a time).
"""
from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelzoo.backends.base import Backend, BackendSettings, Session
from modelzoo.cache import Cache
from modelzoo.core import ModelEntry, Sample
from modelzoo.engines.shipping import SIDECARS, Shipment, ShippedArtifacts, node_cache
from modelzoo.stream import Padding, Preprocessor, batches


@dataclass(frozen=True)
class ShippedFile:
    """A sample's source file sent as bytes (--ship-data); the node writes it out before preprocess."""

    name: str
    data: bytes


class SessionHost:
    def __init__(self, entry: ModelEntry, backend: Backend, shipment: Shipment, settings: BackendSettings,
                 batch_size: int):
        self.entry = entry
        self.backend = backend
        self.shipment = shipment
        self.settings = settings
        self.batch_size = batch_size
        self.session: Session | None = None
        self.lock = threading.Lock()
        self.scratch = Path(tempfile.mkdtemp(prefix="modelzoo-actor-"))

    def open(self) -> dict[str, Any]:
        """Open the session on this node; says where it runs."""
        import ray

        # Ray gives the actor its own devices, numbered from 0 (the backend renumbers its options);
        # files stay on this node.
        settings = replace(self.settings, workdir=self.scratch / "work",
                           options=self.backend.on_actor(self.settings.options))
        cache = node_cache()
        self.backend.check_paths(settings, cache)  # this node's folders, as a local run checks its own
        cache.mkdir(parents=True, exist_ok=True)
        with open(cache / ".open.lock", "w") as lock:
            # The actors of one node open one at a time: the first builds what the node's chip needs
            # (an .om: atc is slow and memory-hungry), the others find it in the node's cache.
            fcntl.flock(lock, fcntl.LOCK_EX)
            store = Cache(cache)
            self.session = self.backend.open(ShippedArtifacts(self.entry, self.shipment, store),
                                             self.batch_size, settings)
            # What this session built here (an .om), for the driver to ship to the other nodes.
            built = {file: (cache / file).read_bytes() for name, reused in store.reused.items() if not reused
                     for file in (name, *(name + suffix for suffix in SIDECARS)) if (cache / file).is_file()}
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "precision": self.session.precision, "precision_note": self.session.precision_note,
                "kept_ops": list(self.session.kept_ops), "built": built}

    def infer(self, items: list[tuple[str, Any]]) -> dict[str, Any]:
        """Preprocess and infer one piece of work of (key, source): the keys, outputs and metas (one
        per key, None where preprocess gave none) of each batch it made, the samples that could not
        be read (as the local run records them), its padding counts, and this session's figures so
        far. A model with dynamic axes gets several batches' worth, sorted by size here, as a local
        run buckets them."""
        manifest = self.entry.manifest
        skipped: list[dict[str, str]] = []
        metas: dict[str, Any] = {}
        padding = Padding(manifest, self.session.sizes_for) if manifest.axes else None
        with tempfile.TemporaryDirectory(dir=self.scratch) as shipped:
            samples = [Sample(key, _local(source, Path(shipped) / str(i))) for i, (key, source) in enumerate(items)]
            loaded = Preprocessor(self.entry.preprocess, samples, workers=0, window=0, plugin=manifest.plugin)
            made = list(batches(loaded, self.batch_size, [t.name for t in manifest.inputs], True, skipped.append,
                                self.entry.collate, plugin=manifest.plugin, metas=metas, manifest=manifest,
                                bucket_window=len(samples) if manifest.axes else 0, padding=padding))
        with self.lock:
            done = [(keys, outputs, [metas.get(key) for key in keys]) for keys, outputs in self.session.run(made)]
            return {"batches": done, "skipped": skipped, "padding": padding.counts() if padding else None,
                    "images": self.session.images, "throughput_fps": self.session.throughput_fps()}

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _local(source: Any, scratch: Path) -> Any:
    if not isinstance(source, ShippedFile):
        return source
    scratch.mkdir()
    path = scratch / source.name
    path.write_bytes(source.data)
    return path
