"""modelzoo: a generic runner that exports, compiles, runs and scores vision models."""
from __future__ import annotations

__version__ = "0.1.0"
