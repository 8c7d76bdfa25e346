"""Where inference runs besides this process: `--engine ray` spreads it over a Ray cluster.

The local engine is the pipeline's own (`pipeline.run`). An engine replaces only the part that turns
the samples still to do into ``(keys, outputs)``; the driver keeps results.jsonl, resume and the
report, so a cluster run and a local run write the same files. Ray is an optional extra: nothing
here imports it until `--engine ray` is asked for.
"""
