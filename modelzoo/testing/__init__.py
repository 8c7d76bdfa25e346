"""Test helpers for the runner and its plugins: fake Ascend tools that run anywhere."""
