"""Console lines as ais_bench prints them: `[LEVEL] message` on stdout.

The real tool prints from two places (the C++ runtime with fprintf, the Python front end with
logging configured as '[%(levelname)s] %(message)s' on stdout); both end up as these lines.
"""
from __future__ import annotations


def info(message: str) -> None:
    print(f"[INFO] {message}", flush=True)


def warning(message: str) -> None:
    print(f"[WARNING] {message}", flush=True)


def error(message: str) -> None:
    print(f"[ERROR] {message}", flush=True)


def raw(message: str) -> None:
    print(message, flush=True)
