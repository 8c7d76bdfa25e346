"""`modelzoo compare`: where a reduced-precision model first departs from the fp32 ONNX, and which
ops kept at higher precision bring it back.

graph.py lists and exposes the ONNX graph's tensors; sides.py runs each backend with those tensors
as outputs; metrics.py measures each tensor; fix.py searches for the ops to keep; report.py writes
compare.json, compare.md and compare.png; command.py ties them together for the CLI.
"""
