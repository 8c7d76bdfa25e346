"""Inference backends. Each module is a plugin registering one backend through the hooks."""
