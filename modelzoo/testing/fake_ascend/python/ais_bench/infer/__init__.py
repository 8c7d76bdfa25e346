"""The ais_bench front end: command line, inference loop, outputs, summary, InferSession."""
