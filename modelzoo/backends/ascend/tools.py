"""Running the toolkit's commands: logged, bounded in time, failures as one-line UserErrors."""
from __future__ import annotations

import logging
import shlex
import subprocess
from pathlib import Path

from modelzoo.errors import UserError

log = logging.getLogger(__name__)


def run_tool(cmd: list[str], what: str, timeout: float | None, cwd: Path | None = None,
             hint: str = "") -> subprocess.CompletedProcess[str]:
    """Run `cmd` and capture its output; a missing tool or a hang ends the command with one line.

    The exit status is left to the caller: each tool reports its failures differently.
    """
    log.info("running: %s", shlex.join(cmd))
    try:
        return subprocess.run(cmd, capture_output=True, text=True, errors="replace", cwd=cwd,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise UserError(f"{what}: '{cmd[0]}' not found; {hint or 'put it on PATH'}") from None
    except subprocess.TimeoutExpired:
        raise UserError(f"{what}: '{shlex.join(cmd)}' did not finish within {timeout:g} s; "
                        "check that the NPU driver is healthy (is another process holding it?) "
                        "and try again") from None
    except OSError as exc:
        raise UserError(f"{what}: cannot run '{cmd[0]}': {exc.strerror or exc}; "
                        f"{hint or 'check the installation'}") from None


def parse_devices(text: str) -> list[int]:
    """'0' -> [0]; '0,1' -> [0, 1]. Ids are the logical device ids ais_bench takes (0..255)."""
    parts = [p.strip() for p in str(text).split(",")]
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise UserError(f"--device {text!r} is not a device id list; pass ids like 0 or 0,1 "
                        "(see the Device column of 'npu-smi info')")
    devices = [int(p) for p in parts]
    if len(set(devices)) != len(devices) or max(devices) > 255:
        raise UserError(f"--device {text!r} repeats an id or has one above 255; pass distinct "
                        "ids like 0 or 0,1")
    return devices
