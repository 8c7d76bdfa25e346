"""`npu-smi info`: which Ascend chips this host has, and which soc_version to compile for.

The device table (see ascend-tools.md) gives two rows per chip between '+' border lines:
    | <npu id>   <name>     | <health> | <power> <temp> <hugepages>          |
    | <chip id>  [<device>] | <bus id> | <aicore> <memory> [<hbm>]           |
The second row's second number is the `Device` column (or `Phy-ID` on driver 25.x); 910B tables
have only `Chip` there. A process table may follow; it starts with a `| NPU  Chip | Process id`
header and is not read.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from modelzoo.backends.ascend.tools import run_tool
from modelzoo.errors import UserError

NPU_SMI_TIMEOUT_S = 60.0
CANN_HINT = ("install the Ascend driver and source the CANN toolkit's set_env.sh "
             "(e.g. /usr/local/Ascend/ascend-toolkit/set_env.sh)")

_NUMBER = re.compile(r"[0-9]+")  # ASCII only: int() would also take other scripts' digits
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class Chip:
    npu_id: int
    chip_id: int
    device_id: int | None  # the Device / Phy-ID column; None where the table has none (910B)
    name: str  # e.g. 310P3, 910B2C, Ascend910
    health: str

    @property
    def soc_version(self) -> str:
        """ATC's --soc_version: "Ascend" + Name (a name that already starts with it is kept)."""
        return self.name if self.name.startswith("Ascend") else "Ascend" + self.name


def parse_npu_smi(text: str) -> list[Chip]:
    """The chips in `npu-smi info` output; an empty list for a table without devices.

    Anything that is not such a table raises a one-line UserError, never another exception.
    """
    chips: list[Chip] = []
    in_table = False
    first: tuple[int, str, str] | None = None  # the pending first row of a chip
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line.startswith("|"):
            continue  # '+---' / '+===' borders, blank lines
        cells = [c.strip() for c in line.strip("|").split("|")]
        words = cells[0].split()
        if words[:2] == ["NPU", "Name"]:
            in_table = True  # the device table's first header row
            continue
        if not in_table or words[:1] == ["Chip"]:
            continue  # the version banner; the second header row
        if words[:2] == ["NPU", "Chip"] or cells[0].startswith("No running processes"):
            break  # the process table
        if len(cells) < 2:
            raise _garbled(number, line)
        if first is None:
            if len(words) != 2 or not _NUMBER.fullmatch(words[0]) or not _NAME.fullmatch(words[1]):
                raise _garbled(number, line)
            first = (int(words[0]), words[1], cells[1])
        else:
            if not 1 <= len(words) <= 2 or not all(_NUMBER.fullmatch(w) for w in words):
                raise _garbled(number, line)
            npu_id, name, health = first
            device_id = int(words[1]) if len(words) == 2 else None
            chips.append(Chip(npu_id, int(words[0]), device_id, name, health))
            first = None
    if not in_table:
        raise UserError("'npu-smi info' printed no device table (no 'NPU  Name' header); "
                        "check the driver installation with 'npu-smi info', or pass --soc-version")
    if first is not None:
        raise UserError(f"'npu-smi info' output ends inside the entry of NPU {first[0]}; "
                        "rerun it, or pass --soc-version")
    return chips


def _garbled(number: int, line: str) -> UserError:
    shown = line if len(line) <= 80 else line[:77] + "..."
    return UserError(f"cannot read line {number} of 'npu-smi info' output: {shown!r}; "
                     "pass --soc-version (e.g. Ascend310P3) to skip chip detection")


def read_chips() -> tuple[list[Chip], str]:
    """Run `npu-smi info`; returns its chips and its version banner (may be empty)."""
    result = run_tool(["npu-smi", "info"], "chip detection", NPU_SMI_TIMEOUT_S, hint=CANN_HINT)
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise UserError(f"'npu-smi info' failed (exit {result.returncode}): {last}; "
                        "check the driver, or pass --soc-version")
    match = re.search(r"npu-smi\s+(\S+)", result.stdout)
    return parse_npu_smi(result.stdout), match.group(1) if match else ""


def choose_soc(chips: list[Chip], devices: list[int]) -> str:
    """The one soc_version of the chips a run uses.

    Where the table has device ids, only the requested devices count, so a host that mixes
    chip kinds still works when one kind is used; several kinds or no chip is an error.
    """
    if not chips:
        raise UserError("'npu-smi info' lists no NPU; check the driver installation, or pass "
                        "--soc-version to compile without a chip")
    if all(c.device_id is not None for c in chips):
        known = {c.device_id for c in chips}
        missing = [d for d in devices if d not in known]
        if missing:
            raise UserError(f"device {missing[0]} is not in 'npu-smi info' (devices: "
                            f"{', '.join(str(d) for d in sorted(known))}); pass --device with "
                            "one of them")
        chips = [c for c in chips if c.device_id in devices]
    kinds = sorted({c.soc_version for c in chips})
    if len(kinds) > 1:
        raise UserError(f"the devices hold different chips ({', '.join(kinds)}); pass "
                        "--soc-version with one of them and --device with that chip's ids")
    return kinds[0]
