"""`npu-smi info` and `npu-smi info -m` outputs seen on real hosts, with their expected parses.

Tests of a real parser can iterate over them:

    for name, text in NPU_SMI_VARIANTS.items():
        assert parse(text) == EXPECTED_PARSE[name]

EXPECTED_PARSE rows are (npu_id, chip_id, device_id, name): device_id is the number in the second
column of a device's second row (the `Device` column, or `Phy-ID` on driver 25.x), None where the
table has no such column (910B tables, header `Chip`) -- then `npu-smi info -m` gives the logical
id. EXPECTED_M_PARSE rows are (npu_id, chip_id, chip_logic_id, chip_name) for compute chips only
(`Mcu` rows have logic id `-` and are not devices).
"""
from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_VARIANT = "310P3x2"

# The reference table (/work/shared/reference/ascend-tools.md), uneven borders included.
_310P3_X2 = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.0                   Version: 23.0.0                                                         |
+-------------------+-----------------+------------------------------------------------------+
| NPU     Name      | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device    | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===================+=================+======================================================+
| 0       310P3     | OK              | 15.8         42                0    / 0              |
| 0       0         | 0000:82:00.0    | 0            1074 / 21534                            |
+===================+=================+======================================================+
| 1       310P3     | OK              | 15.4         43                0    / 0              |
| 0       1         | 0000:89:00.0    | 0            1070 / 21534                            |
+===================+=================+======================================================+
"""

_HEADER_23 = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.0                   Version: 23.0.0                                                         |
+-------------------+-----------------+------------------------------------------------------+
| NPU     Name      | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device    | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===================+=================+======================================================+
"""

# 910B: one chip per NPU, second header is just `Chip`, HBM column, then the process table.
_910B2C_X2 = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 23.0.2.1                 Version: 23.0.2.1                                             |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     910B2C              | OK            | 88.6        51                0    / 0             |
| 0                         | 0000:5A:00.0  | 0           0    / 0          20701/ 65536         |
+===========================+===============+====================================================+
| 1     910B2C              | OK            | 99.6        50                0    / 0             |
| 0                         | 0000:19:00.0  | 0           0    / 0          20687/ 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| 0       0                 | 124528        | python3.8                | 17400                   |
+---------------------------+---------------+----------------------------------------------------+
"""

# Driver 25.x: `Chip  Phy-ID`, two chips per NPU, power `-` on the second chip.
_ASCEND910_DRIVER25 = """\
+------------------------------------------------------------------------------------------------+
| npu-smi 25.2.0                   Version: 25.2.0                                               |
+---------------------------+---------------+----------------------------------------------------+
| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|
| Chip  Phy-ID              | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |
+===========================+===============+====================================================+
| 0     Ascend910           | OK            | 162.8       37                0    / 0             |
| 0     0                   | 0000:9C:00.0  | 0           0    / 0          3133 / 65536         |
+------------------------------------------------------------------------------------------------+
| 0     Ascend910           | OK            | -           37                0    / 0             |
| 1     1                   | 0000:9E:00.0  | 0           0    / 0          2876 / 65536         |
+===========================+===============+====================================================+
| 1     Ascend910           | OK            | 167.1       38                0    / 0             |
| 0     2                   | 0000:37:00.0  | 0           0    / 0          3116 / 65536         |
+------------------------------------------------------------------------------------------------+
| 1     Ascend910           | OK            | -           38                0    / 0             |
| 1     3                   | 0000:39:00.0  | 0           0    / 0          10568/ 65536         |
+===========================+===============+====================================================+
+---------------------------+---------------+----------------------------------------------------+
| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |
+===========================+===============+====================================================+
| No running processes found in NPU 0                                                            |
+===========================+===============+====================================================+
| 1       1                 | 990711        | python                   | 7746                    |
+===========================+===============+====================================================+
"""

_310P3_POWER_NA = _HEADER_23 + """\
| 0       310P3     | OK              | NA           42                0    / 0              |
| 0       0         | 0000:82:00.0    | 0            1074 / 21534                            |
+===================+=================+======================================================+
| 1       310P3     | OK              | NA           43                0    / 0              |
| 0       1         | 0000:89:00.0    | 0            1070 / 21534                            |
+===================+=================+======================================================+
"""

_LARGE_IDS = _HEADER_23 + """\
| 32896   310P3     | OK              | 15.8         42                0    / 0              |
| 0       0         | 0000:82:00.0    | 0            1074 / 21534                            |
+===================+=================+======================================================+
| 32897   310P3     | OK              | 15.4         43                0    / 0              |
| 0       1         | 0000:89:00.0    | 0            1070 / 21534                            |
+===================+=================+======================================================+
"""

_MIXED = _HEADER_23 + """\
| 0       310P3     | OK              | 15.8         42                0    / 0              |
| 0       0         | 0000:82:00.0    | 0            1074 / 21534                            |
+===================+=================+======================================================+
| 1       910B4     | OK              | 80.2         45                0    / 0              |
| 0       1         | 0000:C1:00.0    | 3            2867 / 32768                            |
+===================+=================+======================================================+
"""

# An edge board: health Alarm, Bus-Id NA.
_310B4 = """\
+--------------------------------------------------------------------------------------------------------+
| npu-smi 23.0.0                                   Version: 23.0.0                                       |
+-------------------------------+-----------------+------------------------------------------------------+
| NPU     Name                  | Health          | Power(W)     Temp(C)           Hugepages-Usage(page) |
| Chip    Device                | Bus-Id          | AICore(%)    Memory-Usage(MB)                        |
+===============================+=================+======================================================+
| 0       310B4                 | Alarm           | 0.0          65                15    / 15            |
| 0       0                     | NA              | 0            3628 / 15609                            |
+===============================+=================+======================================================+
"""

ChipRow = tuple[int, int, "int | None", str]  # npu_id, chip_id, logic id (None = '-'), chip name


@dataclass(frozen=True)
class Variant:
    info: str  # exact `npu-smi info` text
    devices: list[tuple[int, int, int | None, str]]  # expected parse of `info`
    chips: list[ChipRow]  # rows of `npu-smi info -m`, Mcu rows included
    phy_ids: list[int | None] = field(default_factory=list)  # a Chip Phy-ID column in `-m`


def _mcu(npu: int, chip: int) -> ChipRow:
    return (npu, chip, None, "Mcu")


VARIANTS: dict[str, Variant] = {
    "310P3x2": Variant(
        _310P3_X2, [(0, 0, 0, "310P3"), (1, 0, 1, "310P3")],
        [(0, 0, 0, "Ascend 310P3"), (1, 0, 1, "Ascend 310P3")],
    ),
    "910B2Cx2": Variant(
        _910B2C_X2, [(0, 0, None, "910B2C"), (1, 0, None, "910B2C")],
        [(0, 0, 0, "Ascend 910B2C"), _mcu(0, 1), (1, 0, 1, "Ascend 910B2C"), _mcu(1, 1)],
    ),
    "Ascend910_driver25": Variant(
        _ASCEND910_DRIVER25,
        [(0, 0, 0, "Ascend910"), (0, 1, 1, "Ascend910"), (1, 0, 2, "Ascend910"),
         (1, 1, 3, "Ascend910")],
        [(0, 0, 0, "Ascend 910"), (0, 1, 1, "Ascend 910"), _mcu(0, 2),
         (1, 0, 2, "Ascend 910"), (1, 1, 3, "Ascend 910"), _mcu(1, 2)],
        phy_ids=[0, 1, None, 2, 3, None],
    ),
    "310P3_power_na": Variant(
        _310P3_POWER_NA, [(0, 0, 0, "310P3"), (1, 0, 1, "310P3")],
        [(0, 0, 0, "Ascend 310P3"), (1, 0, 1, "Ascend 310P3")],
    ),
    "large_npu_ids": Variant(
        _LARGE_IDS, [(32896, 0, 0, "310P3"), (32897, 0, 1, "310P3")],
        [(32896, 0, 0, "Ascend 310P3"), (32897, 0, 1, "Ascend 310P3")],
    ),
    "mixed_310P3_910B4": Variant(
        _MIXED, [(0, 0, 0, "310P3"), (1, 0, 1, "910B4")],
        [(0, 0, 0, "Ascend 310P3"), (1, 0, 1, "Ascend 910B4"), _mcu(1, 1)],
    ),
    "310B4": Variant(_310B4, [(0, 0, 0, "310B4")], [(0, 0, 0, "Ascend 310B4")]),
    "no_devices": Variant(_HEADER_23, [], []),
}


def render_m(variant: Variant) -> str:
    """`npu-smi info -m`: tab-led rows of 31-wide columns; the Chip Name column is 30 wide."""
    headers = ["NPU ID", "Chip ID", "Chip Logic ID"] + (["Chip Phy-ID"] if variant.phy_ids else [])
    lines = ["\t" + "".join(h.ljust(31) for h in headers) + "Chip Name".ljust(30)]
    for i, (npu, chip, logic, name) in enumerate(variant.chips):
        cells = [str(npu), str(chip), "-" if logic is None else str(logic)]
        if variant.phy_ids:
            phy = variant.phy_ids[i]
            cells.append("-" if phy is None else str(phy))
        # Real output pads the Mcu name but not the Ascend chip names.
        lines.append("\t" + "".join(c.ljust(31) for c in cells) + (name.ljust(30) if logic is None
                                                                    else name))
    return "\n".join(lines) + "\n"


NPU_SMI_VARIANTS: dict[str, str] = {name: v.info for name, v in VARIANTS.items()}
EXPECTED_PARSE: dict[str, list[tuple[int, int, int | None, str]]] = {
    name: v.devices for name, v in VARIANTS.items()
}
NPU_SMI_M_VARIANTS: dict[str, str] = {name: render_m(v) for name, v in VARIANTS.items()}
EXPECTED_M_PARSE: dict[str, list[tuple[int, int, int, str]]] = {
    name: [(n, c, logic, chip) for n, c, logic, chip in v.chips if logic is not None]
    for name, v in VARIANTS.items()
}
