"""Where a model's weights come from: --weights, the weights directory, or seeded random values."""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from modelzoo.errors import UserError
from modelzoo.manifest import Manifest

log = logging.getLogger(__name__)

RANDOM_SEED = 0


def modelzoo_home() -> Path:
    return Path(os.environ.get("MODELZOO_HOME") or Path.home() / ".cache" / "modelzoo")


def weights_dir() -> Path:
    return modelzoo_home() / "weights"


@dataclass(frozen=True)
class Weights:
    path: Path | None  # None: seeded random weights
    sha256: str | None

    @property
    def random(self) -> bool:
        return self.path is None

    @property
    def identity(self) -> str:
        """What cached artifacts built from these weights are keyed by."""
        return f"random-seed-{RANDOM_SEED}" if self.random else self.sha256

    def to_report(self) -> dict:
        return {"path": str(self.path) if self.path else None, "sha256": self.sha256,
                "random": self.random}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_weights(manifest: Manifest, weights: Path | None) -> Weights:
    if weights is not None:
        if not Path(weights).is_file():
            raise UserError(f"weights file {weights} does not exist; check --weights")
        return Weights(Path(weights).resolve(), sha256_of(weights))
    if manifest.weights is None:  # the plugin publishes no checkpoint
        return Weights(None, None)
    standard = weights_dir() / manifest.weights["file"]
    if standard.is_file():
        return Weights(standard, sha256_of(standard))
    return Weights(None, None)


RANDOM_BANNER = """\
************************************************************************
*  NO CHECKPOINT: running {name} with seeded RANDOM weights.
*  Accuracy below means nothing; throughput is real.
*  {where}
************************************************************************"""

# The banner's one-line form, for --quiet.
RANDOM_LINE = "NO CHECKPOINT: {name} runs with seeded RANDOM weights: accuracy means nothing, throughput is real"


def fetch_weights(manifest: Manifest, timeout: float = 30.0) -> Path:
    """Download the manifest's weights into the weights directory; one clear line on failure."""
    if manifest.weights is None:
        raise UserError(f"{manifest.path} names no [weights] to download; pass --weights PATH to runs")
    target = weights_dir() / manifest.weights["file"]
    if target.is_file():
        log.info("weights already present: %s", target)
        return target
    url = manifest.weights["url"]
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", url)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(response, out)
        _verify(manifest, Path(tmp), url)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise UserError(f"cannot download {url} ({reason}); download it where a network exists and put "
                        f"it at {target}, or pass --weights PATH") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def _verify(manifest: Manifest, path: Path, url: str) -> None:
    size, sha = manifest.weights.get("size"), manifest.weights.get("sha256")
    if size is not None and path.stat().st_size != size:
        raise UserError(f"{url} gave {path.stat().st_size} bytes, expected {size}; try again")
    if sha is not None and sha256_of(path) != sha:
        raise UserError(f"{url} gave a file whose sha256 differs from the manifest's; try again")
