"""compare.json, compare.md and compare.png: the per-tensor table, the first divergent op and the fix."""
from __future__ import annotations

from pathlib import Path

from modelzoo.fileio import atomic_write_json


def write(result: dict, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output / "compare.json", result)
    (output / "compare.md").write_text(markdown(result))
    plot(result, output / "compare.png")


def _num(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def describe(figures: dict) -> str:
    """'cosine 0.999912, top-1 100%' (cosine '-' where inf/nan leave none)."""
    text = f"cosine {_num(figures['cosine'], '.6f')}"
    return text + (f", top-1 {figures['top1_agreement']:.0%}" if "top1_agreement" in figures else "")


def fix_text(fix: list[str] | None, quote: str = "") -> str:
    """'A, B'; 'none needed' for an empty fix (the output met the target already)."""
    if fix is None:
        return "none found"
    return ", ".join(f"{quote}{op}{quote}" for op in fix) if fix else "none needed"


def markdown(result: dict) -> str:
    first = result["first_divergent"]
    lines = [f"# {result['model']}: {result['backend']} {result['precision']} against fp32 ONNX (ONNX Runtime)",
             "", f"{result['samples']} samples; threshold cosine {result['threshold']}.", ""]
    lines.append(f"**First divergent op:** `{first['op']}` ({first['type']}), cosine "
                 f"{_num(first['cosine'], '.6f')}, max|diff| {_num(first['max_abs'], '.3g')}"
                 if first else "**No op diverges.**")
    agreement = result["agreement"]
    lines += ["", f"Output agreement: {describe(agreement)}, max|diff| {_num(agreement['max_abs'], '.3g')}."]
    if "fix" in result:
        before, after = result["agreement_before"], result["agreement_after"]
        lines += ["", f"**Fix** (ops kept, {result['fix_mechanism']}): {fix_text(result['fix'], '`')}.",
                  f"Output agreement before: {describe(before)}; after: {describe(after)} "
                  f"(measured, {result['fix_runs']} models run"
                  f"{'; not minimal: the --fix-runs budget was spent' if result['fix_minimal'] is False else ''})."]
    lines += ["", "| # | op | type | shape | cosine | max abs | max rel | inf | nan |",
              "|---|---|---|---|---|---|---|---|---|"]
    for i, row in enumerate(result["ops"]):
        if not row["observable"]:
            lines.append(f"| {i} | {row['op']} | {row['type']} | | not observable | | | | |")
            continue
        lines.append(f"| {i} | {row['op']} | {row['type']} | {row['shape']} | {_num(row['cosine'], '.6f')} | "
                     f"{_num(row['max_abs'], '.3g')} | {_num(row['max_rel'], '.3g')} | {row['inf']} | {row['nan']} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [(i, row) for i, row in enumerate(result["ops"]) if row["observable"]]
    fig, ax = plt.subplots(figsize=(10, 4))
    xs = [i for i, _ in rows]
    # inf/nan leave no cosine: drawn at 0, where the eye looks for a collapse.
    ax.plot(xs, [row["cosine"] if row["cosine"] is not None else 0.0 for _, row in rows], marker=".")
    ax.axhline(result["threshold"], color="grey", linestyle="--", label=f"threshold {result['threshold']}")
    if result["first_divergent"]:
        ax.axvline(result["first_divergent"]["index"], color="red", label=result["first_divergent"]["op"])
    ax.set_xlabel("op (topological order)")
    ax.set_ylabel("cosine vs fp32 ONNX")
    ax.set_title(f"{result['model']} {result['backend']} {result['precision']}")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
