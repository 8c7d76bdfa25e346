"""The Ascend NPU backend: compile with ATC, run with ais_bench.

One job per module:
  tools.py       run an external command (logged, with a timeout) and parse --device
  npu_smi.py     read `npu-smi info` into chip records and pick the chip to compile for
  atc.py         the atc command line, the cached .om, and ATC's error block
  ais_parse.py   ais_bench's console lines, its summary JSON and InferSession timings
  ais_cli.py     `python3 -m ais_bench` over .bin files (--io files) and pure inference
  ais_session.py in-process `InferSession` (--io stream)
  backend.py     the Backend registered as "ascend" (the plugin module)

Nothing here imports ais_bench, aclruntime or runs a tool at import time: the package must load
on machines without the CANN toolkit, where `unavailable_reason()` says what is missing.
"""
