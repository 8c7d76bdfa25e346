"""What `modelzoo ci` records per model: one outcome per check, and the one-line reasons."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelzoo.core import ModelEntry
from modelzoo.errors import UserError
from modelzoo.testing.mock import ContractError
from modelzoo.weights import Weights

CHECKS = ("manifest", "contract", "export", "smoke")
# A small static batch; 4 is also what `modelzoo run --bs 4` caches, so CI reuses those exports.
CI_BATCH = 4
SMOKE_IMAGES = 4


class CheckFailed(Exception):
    """A check ran and its result is not good enough."""


class Skipped(Exception):
    """A check that does not apply to this model (no demo data, or what it needs failed)."""


@dataclass
class Check:
    status: str = "skip"  # pass, fail or skip
    seconds: float = 0.0
    message: str = "not run"


@dataclass
class ModelResult:
    name: str
    manifest_path: Path | None = None
    plugin: Any = None  # the module (or object) that registers the model
    entry: ModelEntry | None = None
    checks: dict[str, Check] = field(default_factory=lambda: {c: Check() for c in CHECKS})
    backend: str | None = None
    parity: dict[str, Any] | None = None
    weights: Weights | None = None
    smoke: dict[str, Any] | None = None
    measured: dict[str, Any] | None = None  # report.json of a full run given with --measured

    def fail(self, check: str, message: str) -> None:
        self.checks[check] = Check("fail", self.checks[check].seconds, message)

    @property
    def passed(self) -> bool:
        return all(c.status != "fail" for c in self.checks.values())


def safe_name(name: str) -> str:
    """A model name as one path component."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).lstrip(".") or "_"


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, (UserError, ContractError, CheckFailed)) and text:
        return text  # written for the user already
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
