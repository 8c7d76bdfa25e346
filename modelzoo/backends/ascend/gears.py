"""Ascend's dynamic gears for a model's declared dynamic axes (manifest `[axes]`).

atc compiles a fixed list of gears: each gear gives every dynamic axis one size. The grammar
(docs/ascend.md lists the sources):
    --input_shape="input_ids:1,-1;attention_mask:1,-1" --dynamic_dims="8,8;16,16"
        one gear per `;`, one value per -1 of --input_shape, in --input_shape's order
    --input_shape="pixels:1,3,-1,-1" --dynamic_image_size="16,16;32,48"
        an NCHW/NHWC picture whose height and width vary: one "height,width" per gear
and ais_bench picks the gear of each execution: `--dymDims "input_ids:1,8;attention_mask:1,8"`
(every input's whole shape, names ignored, values matched in order) or `--dymHW 32,48` (height
first).

Gears come from each axis's `gears`, else powers of two from its min up to its max, plus the
max; several axes gear together as every combination of their sizes. atc takes at most
MAX_GEARS gears: derived ones are thinned to fit, declared ones that do not fit are an error.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from modelzoo.backends.base import FixedAxes, axis_sizes
from modelzoo.core import Arrays
from modelzoo.errors import UserError
from modelzoo.manifest import Manifest

MAX_GEARS = 100  # atc's limit on --dynamic_dims / --dynamic_image_size gears

Gear = dict[str, int]  # dynamic axis name -> size


def axis_gears(manifest: Manifest, name: str) -> tuple[int, ...]:
    """One axis's gears: the manifest's, else powers of two in [min, max) plus max."""
    axis = manifest.axes[name]
    if axis.gears:
        return tuple(sorted(set(axis.gears)))
    sizes = [2 ** k for k in range(math.ceil(math.log2(axis.min)), axis.max.bit_length())
             if axis.min <= 2 ** k < axis.max]
    return (*sizes, axis.max)


def gear_list(manifest: Manifest) -> list[Gear]:
    """Every gear of the model, smallest first (by elements, then by sizes)."""
    names = list(manifest.axes)
    per_axis = {name: list(axis_gears(manifest, name)) for name in names}
    while math.prod(len(s) for s in per_axis.values()) > MAX_GEARS:
        widest = max(names, key=lambda n: len(per_axis[n]))
        if manifest.axes[widest].gears or len(per_axis[widest]) < 3:
            count = math.prod(len(s) for s in per_axis.values())
            raise UserError(f"the [axes] gears of {manifest.path} make {count} combinations, above "
                            f"atc's {MAX_GEARS}; declare fewer `gears` for {', '.join(names)}")
        sizes = per_axis[widest]
        per_axis[widest] = [*sizes[-2::-2][::-1], sizes[-1]]  # every other size, the max kept
    gears = [dict(zip(names, combo)) for combo in itertools.product(*per_axis.values())]
    return sorted(gears, key=lambda g: (math.prod(g.values()), [g[n] for n in names]))


def choose(gears: list[Gear], sizes: Gear) -> Gear | None:
    """The smallest gear that holds a batch of these sizes; None when none does."""
    for gear in gears:
        if all(gear[name] >= size for name, size in sizes.items()):
            return gear
    return None


def picture_axes(manifest: Manifest) -> tuple[str, str] | None:
    """(height axis, width axis) when every dynamic input is an NCHW/NHWC picture whose height and
    width are the dynamic axes, so that atc's --dynamic_image_size applies; else None."""
    fmt = manifest.atc.get("input_format")
    positions = {"NCHW": (2, 3), "NHWC": (1, 2)}.get(fmt)
    if positions is None:
        return None
    found = set()
    for tensor in manifest.inputs:
        axes = tensor.dynamic_axes
        if not axes:
            continue
        if len(tensor.shape) != 4 or sorted(axes) != list(positions):
            return None
        found.add((axes[positions[0]], axes[positions[1]]))
    return found.pop() if len(found) == 1 else None


def atc_flag(manifest: Manifest, gears: list[Gear]) -> str:
    """`--dynamic_image_size=h,w;...` or `--dynamic_dims=v,...;...` for these gears."""
    hw = picture_axes(manifest)
    if hw is not None:
        return "--dynamic_image_size=" + ";".join(f"{g[hw[0]]},{g[hw[1]]}" for g in gears)
    order = [name for t in manifest.inputs for _, name in sorted(t.dynamic_axes.items())]
    return "--dynamic_dims=" + ";".join(",".join(str(g[name]) for name in order) for g in gears)


def gears_tag(gears: list[Gear]) -> str:
    """A short, stable name part for the gears, e.g. `g4-8x8-64x64` (first and last)."""
    def one(gear: Gear) -> str:
        return "x".join(str(v) for v in gear.values())
    return f"g{len(gears)}-{one(gears[0])}-{one(gears[-1])}"


def dym_dims_arg(manifest: Manifest, batch: int, gear: Gear) -> str:
    """ais_bench's --dymDims for a gear: every input's whole shape, in the model's input order."""
    return ";".join(f"{t.name}:{','.join(map(str, t.concrete_shape(batch, gear)))}" for t in manifest.inputs)


def dym_hw_arg(manifest: Manifest, gear: Gear) -> str:
    """ais_bench's --dymHW for a gear: height first."""
    height, width = picture_axes(manifest) or ("", "")
    return f"{gear[height]},{gear[width]}"


def tag(gear: Gear) -> str:
    """A gear as part of a file or folder name: `seq16`, `height32-width48`."""
    return "-".join(f"{name}{size}" for name, size in gear.items())


def ais_args(manifest: Manifest, batch: int, gear: Gear) -> list[str]:
    """ais_bench's flags that run a gear."""
    if picture_axes(manifest):
        return ["--dymHW", dym_hw_arg(manifest, gear)]
    return ["--dymDims", dym_dims_arg(manifest, batch, gear)]


@dataclass(frozen=True)
class GearedAxes:
    """FixedAxes at the gear each batch needs: the smallest that holds its longest sample."""

    manifest: Manifest
    gears: list[Gear]

    @property
    def dynamic(self) -> bool:
        """Whether the .om has gears at all: atc needs two or more; one gear compiles static."""
        return len(self.gears) > 1

    def gear_of(self, inputs: Arrays) -> Gear:
        sizes = axis_sizes(inputs, self.manifest)
        gear = choose(self.gears, sizes)
        if gear is None:  # stream.py has already refused such samples: this is a safeguard
            raise UserError(f"a batch with sizes {sizes} is above every gear of {self.manifest.path}")
        return gear

    def sizes_for(self, inputs: Arrays) -> Gear:
        return self.gear_of(inputs)

    def pad(self, inputs: Arrays) -> tuple[Arrays, dict[str, int]]:
        return FixedAxes(self.manifest, self.gear_of(inputs)).pad(inputs)

    def trim(self, outputs: Arrays, real: dict[str, int]) -> Arrays:
        return FixedAxes(self.manifest, real).trim(outputs, real)
