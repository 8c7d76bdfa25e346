"""One backend session on one node (one NPU, or a share of a CPU node), fed batches by the driver.

Preprocessing runs inside the actor, not in Ray tasks beside it: a task would need CPUs that the
node has reserved for its actors, and shipping preprocessed arrays through the object store costs
more than the decoding. The actor takes two calls at once, so one batch is decoded while the
previous one runs on the device (a lock keeps the session to one batch at a time).
"""
from __future__ import annotations

import os
import tempfile
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from modelzoo.backends.base import Backend, BackendSettings, Batch, Session
from modelzoo.cache import Cache
from modelzoo.engines.shipping import Shipment, ShippedArtifacts, node_cache
from modelzoo.errors import UserError
from modelzoo.labels import image_key
from modelzoo.registry import ModelEntry

# A source is (file name, path on a filesystem every node sees) or (file name, the file's bytes).
Source = tuple[str, "str | bytes"]


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

        artifacts = ShippedArtifacts(self.entry, self.shipment, Cache(node_cache()))
        # Ray gives the actor its own NPU as device 0 (ASCEND_RT_VISIBLE_DEVICES); files stay on this node.
        settings = replace(self.settings, workdir=self.scratch / "work", device="0")
        self.session = self.backend.open(artifacts, self.batch_size, settings)
        return {"node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "int8_agreement": self.session.int8_agreement}

    def infer(self, sources: list[Source]) -> dict[str, Any]:
        """Preprocess and infer one batch: its keys and outputs, the images that could not be read,
        and this session's figures so far."""
        keys, rows, skipped = [], [], []
        with tempfile.TemporaryDirectory(dir=self.scratch) as shipped:
            for name, source in sources:
                path = Path(source) if isinstance(source, str) else _write(Path(shipped) / name, source)
                try:
                    rows.append(self.entry.preprocess(path))
                except UserError as exc:
                    skipped.append((name, str(exc)))
                    continue
                keys.append(image_key(name))
        outputs = None
        with self.lock:
            if rows:
                [(keys, outputs)] = list(self.session.run([Batch(keys, np.stack(rows))]))
            return {"keys": keys, "outputs": outputs, "skipped": skipped, "images": self.session.images,
                    "throughput_fps": self.session.throughput_fps()}

    def close(self) -> None:
        if self.session is not None:
            self.session.close()


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
