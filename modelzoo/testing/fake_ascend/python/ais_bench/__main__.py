"""`python -m ais_bench ...`"""
from __future__ import annotations

import sys

from ais_bench.infer.infer_process import main

sys.exit(main())
