"""A fake ais_bench (Python front end and aclruntime backend) for tests without an NPU.

It loads the fake .om written by modelzoo's fake atc and runs the ONNX model inside it with ONNX
Runtime. Interfaces, console lines and files follow the real ais_bench; the switches and the
deterministic timing are documented in modelzoo.testing.fake_ascend.
"""
