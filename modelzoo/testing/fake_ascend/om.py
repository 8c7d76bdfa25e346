"""The fake .om format for the fake atc: ais_bench/om_file.py, the one definition of it.

The fake ais_bench reads .om files with that same module; it lives in the fake `python/` directory
because ais_bench must import without modelzoo on its path.
"""
from __future__ import annotations

import sys

from modelzoo.testing.fake_ascend import PYTHON_DIR

if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))
from ais_bench.om_file import OmManifest, TensorInfo, read_om, write_om  # noqa: E402

__all__ = ["OmManifest", "TensorInfo", "read_om", "write_om"]
