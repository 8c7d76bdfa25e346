"""Plugins that exist only for the benchmarks: registered by the benchmark that runs them, never
installed."""
