"""How far a candidate's outputs are from torch's, output by output, and whether that is close enough.

Each manifest output says how it is compared (`compare` in `[[outputs]]`, see OutputCheck):
- "scores": max |diff|, cosine, and the agreement of the argmax over the class axis. A position
  whose torch margin (top-1 minus top-2) is within the measured max |diff| is a near tie that an
  error of that size may flip, so agreement is judged only over the decisive positions, whose
  margin exceeds it; the agreement over all positions is reported beside it.
- "values": max |diff| and cosine only (boxes, embeddings, regressions).
- "labels": the fraction of equal values (integer outputs).

Outputs that do not vary across the samples prove nothing: they are marked `degenerate`. The
cosine of a zero vector is undefined and reported as None, with the reason.
"""
from __future__ import annotations

import numpy as np

from modelzoo.errors import UserError
from modelzoo.manifest import Manifest, OutputCheck

Arrays = dict[str, np.ndarray]


class ParityError(UserError):
    """An export whose outputs differ from torch's beyond the manifest's tolerances. `shortfall`
    is the message without the advice, for callers that give their own (zoo CI)."""

    def __init__(self, shortfall: str, advice: str) -> None:
        super().__init__(shortfall, advice)  # both in args: it pickles (Ray) as it was made
        self.shortfall = shortfall

    def __str__(self) -> str:
        return "; ".join(self.args)


def agreement(manifest: Manifest, reference: list[Arrays], candidate: list[Arrays]) -> dict:
    """How far `candidate` outputs are from `reference` outputs, batch lists concatenated.

    Per output under "outputs"; at the top the worst over the outputs, so that one figure judges
    the whole model (for a single output they are that output's figures), and `degenerate` when
    any output did not vary across the samples."""
    per_output = {t.name: output_figures(t.check, np.concatenate([b[t.name] for b in reference]),
                                         np.concatenate([b[t.name] for b in candidate]))
                  for t in manifest.outputs}
    worst: dict = {}
    for key, pick in (("max_abs_diff", max), ("cosine", min), ("top1_agreement", min), ("equal", min)):
        found = [f[key] for f in per_output.values() if f.get(key) is not None]
        if found or key in ("max_abs_diff", "cosine"):
            worst[key] = pick(found) if found else None
    worst["degenerate"] = any(f["degenerate"] for f in per_output.values())
    worst["images"] = int(len(np.concatenate([b[manifest.outputs[0].name] for b in reference])))
    worst["outputs"] = per_output
    return worst


def output_figures(check: OutputCheck, reference: np.ndarray, candidate: np.ndarray) -> dict:
    """The figures of one output for its compare kind, and whether it varied across samples."""
    figures: dict = {"compare": check.compare}
    if check.compare == "labels":
        figures["equal"] = float(np.mean(reference == candidate)) if reference.size else 1.0
    else:
        figures.update(_values(reference, candidate))
    if check.compare == "scores":
        figures.update(_scores(reference, candidate, check.class_axis, figures["max_abs_diff"]))
    figures["degenerate"] = len(reference) > 1 and bool(np.all(reference == reference[:1]))
    return figures


def _values(reference: np.ndarray, candidate: np.ndarray) -> dict:
    a, b = reference.astype(np.float64).ravel(), candidate.astype(np.float64).ravel()
    figures = {"max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0}
    zero = [name for name, v in (("torch", a), ("candidate", b)) if not v.any()]
    if zero:
        figures["cosine"] = None
        figures["cosine_note"] = f"undefined: the {' and '.join(zero)} output is all zeros"
    else:
        figures["cosine"] = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    return figures


def _scores(reference: np.ndarray, candidate: np.ndarray, axis: int, max_abs_diff: float) -> dict:
    """Argmax agreement over `axis`, on every position and on the decisive ones."""
    ref = np.moveaxis(reference, axis, -1).reshape(-1, reference.shape[axis])
    got = np.moveaxis(candidate, axis, -1).reshape(-1, candidate.shape[axis])
    same = ref.argmax(1) == got.argmax(1)
    top2 = np.sort(ref, axis=1)[:, -2:] if ref.shape[1] > 1 else np.zeros((len(ref), 2))
    decisive = (top2[:, 1] - top2[:, 0]) > max_abs_diff
    return {"top1_agreement": float(np.mean(same)) if same.size else 1.0,
            "decisive_agreement": float(np.mean(same[decisive])) if decisive.any() else None,
            "decisive_positions": int(decisive.sum()), "positions": int(same.size)}


def failures(manifest: Manifest, figures: dict) -> list[str]:
    """What falls short of each output's tolerances, one phrase per output ([] when all pass)."""
    found = []
    for tensor in manifest.outputs:
        short = output_failures(tensor.check, figures["outputs"][tensor.name])
        if short:
            found.append(f"output '{tensor.name}' {', '.join(short)}")
    return found


def output_failures(check: OutputCheck, f: dict) -> list[str]:
    """One output's figures against its tolerances."""
    short = []
    if check.compare == "labels":
        if f["equal"] < check.min_equal:
            short.append(f"{f['equal']:.2%} equal < min_equal {check.min_equal:.2%}")
        return short
    if f["max_abs_diff"] > check.atol:
        short.append(f"max|diff| {f['max_abs_diff']:.2e} > atol {check.atol:.1e}")
    if f["cosine"] is not None and f["cosine"] < check.min_cosine:
        short.append(f"cosine {f['cosine']:.6f} < min_cosine {check.min_cosine}")
    agreed = f.get("decisive_agreement")
    if check.compare == "scores" and agreed is not None and agreed < check.min_agreement:
        short.append(f"top-1 agreement {agreed:.2%} on {f['decisive_positions']} decisive positions "
                     f"< min_agreement {check.min_agreement:.2%}")
    return short


def degenerate_outputs(figures: dict) -> list[str]:
    return [name for name, f in figures["outputs"].items() if f["degenerate"]]


def describe_check(parity: dict) -> str:
    """What failed, and whether the check was not enforced; '' for an enforced check that passed."""
    check = parity.get("check") or {}
    failed = "" if check.get("passed", True) else f"; FAILED: {'; '.join(check['failures'])}"
    return failed + ("; check NOT ENFORCED (--no-parity-check)" if check.get("enforced") is False else "")


def describe(figures: dict, cosine_digits: int = 6) -> str:
    """'max|diff| 1.2e-06, cosine 0.999999, top-1 agreement 100%' from `agreement` figures."""
    parts = []
    if figures.get("max_abs_diff") is not None:
        parts.append(f"max|diff| {figures['max_abs_diff']:.2e}")
    if "cosine" in figures:
        cosine = figures["cosine"]
        parts.append("cosine n/a" if cosine is None else f"cosine {cosine:.{cosine_digits}f}")
    if figures.get("top1_agreement") is not None:
        parts.append(f"top-1 agreement {figures['top1_agreement']:.0%}")
    if figures.get("equal") is not None:
        parts.append(f"{figures['equal']:.0%} equal")
    text = ", ".join(parts)
    if figures.get("degenerate"):
        text += (f" (DEGENERATE: {', '.join(degenerate_outputs(figures))} did not vary across the "
                 f"{figures['images']} samples; this comparison proved nothing)")
    return text
