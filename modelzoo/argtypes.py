"""argparse types shared by the core command line and the backends' own flags."""
from __future__ import annotations

import argparse


def batch_list(text: str) -> tuple[int, ...]:
    """'1,4,8' -> (1, 4, 8): batch sizes of at least 1."""
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected batch sizes like 1,4,8, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"batch sizes must be at least 1, got {text!r}")
    return sizes
