"""Small helpers for the words of console lines."""
from __future__ import annotations


def plural(count: int, noun: str) -> str:
    """'1 sample', '2 samples', '0 samples'."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
