"""Artifacts (ONNX files, compiled models) cached under a key made of everything they depend on."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from modelzoo.errors import UserError
from modelzoo.fileio import atomic_write_json

log = logging.getLogger(__name__)


def digest(parts: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able description of an artifact's inputs."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.reused: dict[str, bool] = {}  # artifact file name -> reused this time?
        self.timings: dict[str, float] = {}  # what -> seconds spent building or finding it

    def artifact(self, stem: str, suffix: str, parts: dict[str, Any],
                 build: Callable[[Path], None], what: str) -> Path:
        """The cached file for `parts`, built by ``build(tmp_path)`` when absent.

        The builder writes to a temporary path that is renamed into place only when it returns,
        so an interrupted build never leaves a file that a later run would trust.
        """
        started = time.perf_counter()
        path = self.root / f"{stem}-{digest(parts)}{suffix}"
        if path.exists():
            log.info("reusing cached %s: %s", what, path)
            self.reused[path.name] = True
            self.timings[what] = self.timings.get(what, 0.0) + time.perf_counter() - started
            return path
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"cannot create the cache directory {self.root}: {exc.strerror}; "
                            "pass --cache-dir with a writable directory") from None
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            build(tmp)
            os.replace(tmp, path)
        finally:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                tmp.unlink(missing_ok=True)
        # The key's parts beside the artifact say what it was built from.
        atomic_write_json(path.with_name(path.name + ".key.json"), parts)
        log.info("built %s: %s", what, path)
        self.reused[path.name] = False
        self.timings[what] = self.timings.get(what, 0.0) + time.perf_counter() - started
        return path
