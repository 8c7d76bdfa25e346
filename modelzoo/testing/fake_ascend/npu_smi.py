"""The fake `npu-smi`: `info` and `info -m` print a recorded host's tables.

MODELZOO_FAKE_NPU_SMI picks the host (a key of npu_smi_variants.VARIANTS; default 310P3x2).
"""
from __future__ import annotations

import os
import sys

from modelzoo.testing.fake_ascend.npu_smi_variants import (
    DEFAULT_VARIANT,
    NPU_SMI_M_VARIANTS,
    NPU_SMI_VARIANTS,
)

VARIANT_ENV = "MODELZOO_FAKE_NPU_SMI"
USAGE = """\
Usage: npu-smi info <watch|proc|-h|-m|-l|-t type> [Options...]
       npu-smi info          Show the device and process information.
       npu-smi info -m       Show the chip mapping information.
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    variant = os.environ.get(VARIANT_ENV, DEFAULT_VARIANT)
    if variant not in NPU_SMI_VARIANTS:
        print(f"fake npu-smi: unknown {VARIANT_ENV}={variant!r}; known: "
              f"{', '.join(NPU_SMI_VARIANTS)}", file=sys.stderr)
        return 2
    if argv == ["info"]:
        print(NPU_SMI_VARIANTS[variant], end="")
        return 0
    if argv == ["info", "-m"]:
        print(NPU_SMI_M_VARIANTS[variant], end="")
        return 0
    print(USAGE, end="")
    return 0 if argv in (["info", "-h"], ["-h"]) else 1


if __name__ == "__main__":
    sys.exit(main())
