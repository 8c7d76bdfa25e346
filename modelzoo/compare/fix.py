"""The search for a small set of ops that, kept at higher precision, restores output agreement.

Polygraphy's `debug precision` idea: every candidate is judged by running the fixed model, never by
a guess. First the shortest run of ops from the first divergence on that meets the target (binary
search over its length), then each op of it dropped in turn while the target still holds: an op
whose neighbour overflows may need keeping too (an Ascend op kept in fp32 hands its output to the
next fp16 op through a cast), and the search finds that by measurement.
"""
from __future__ import annotations

import logging
from typing import Callable

log = logging.getLogger(__name__)

Evaluate = Callable[[list[str]], dict]  # ops kept -> measured agreement figures
Passes = Callable[[dict], bool]


def search(candidates: list[str], evaluate: Evaluate, passes: Passes) -> tuple[list[str], dict, int] | None:
    """(ops kept, their measured agreement, models run), or None when even keeping every candidate
    misses the target."""
    measured: dict[tuple[str, ...], dict] = {}  # each set of ops is run once

    def ok(keep: list[str]) -> tuple[bool, dict]:
        if tuple(keep) not in measured:
            measured[tuple(keep)] = evaluate(keep)
            log.info("compare --fix: keeping %d op(s): cosine %s, top-1 agreement %s", len(keep),
                     measured[tuple(keep)].get("cosine"), measured[tuple(keep)].get("top1_agreement"))
        return passes(measured[tuple(keep)]), measured[tuple(keep)]

    good, figures = ok(candidates)
    if not good:
        return None
    low, high = 0, len(candidates)  # keeping candidates[:high] passes; [:low] is not known to
    while high - low > 1:
        middle = (low + high) // 2
        passed, found = ok(candidates[:middle])
        if passed:
            high, figures = middle, found
        else:
            low = middle
    kept = candidates[:high]
    for op in list(kept):
        if len(kept) == 1:
            break
        trial = [k for k in kept if k != op]
        passed, found = ok(trial)
        if passed:
            kept, figures = trial, found
    return kept, figures, len(measured)
