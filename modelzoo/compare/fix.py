"""The search for a small set of ops that, kept at higher precision, restores output agreement.

Polygraphy's `debug precision` idea: every candidate is judged by running the fixed model, never by
a guess. First the shortest run of ops from the first divergence on that meets the target (binary
search over its length), then each op of it dropped in turn while the target still holds: an op
whose neighbour overflows may need keeping too (an Ascend op kept in fp32 hands its output to the
next fp16 op through a cast), and the search finds that by measurement.

Every model run costs a quantisation or a compile: `max_runs` bounds them. When the dropping step
runs out, the set found so far is returned (it meets the target, measured), marked not minimal.
"""
from __future__ import annotations

import logging
from typing import Callable, NamedTuple

log = logging.getLogger(__name__)

Evaluate = Callable[[list[str]], dict]  # ops kept -> measured agreement figures
Passes = Callable[[dict], bool]


class Found(NamedTuple):
    kept: list[str]      # ops kept at higher precision
    figures: dict        # their measured output agreement
    runs: int            # models run
    minimal: bool        # every op of `kept` was tried without and is needed


def search(candidates: list[str], evaluate: Evaluate, passes: Passes, max_runs: int) -> Found | None:
    """The ops to keep, or None when even keeping every candidate misses the target."""
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
    for tried, op in enumerate(list(kept)):
        if len(kept) == 1:
            break
        if len(measured) >= max_runs:
            log.warning("compare --fix: %d models run, the budget (--fix-runs); %d of the %d ops kept were "
                        "not tried without", len(measured), len(candidates[:high]) - tried, high)
            return Found(kept, figures, len(measured), minimal=False)
        trial = [k for k in kept if k != op]
        passed, found = ok(trial)
        if passed:
            kept, figures = trial, found
    return Found(kept, figures, len(measured), minimal=True)
