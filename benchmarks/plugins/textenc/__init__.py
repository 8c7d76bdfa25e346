"""One text encoder declared twice: `textenc-dynamic` (a dynamic `seq` axis, 8..512 tokens, each
batch padded to its longest text) and `textenc-fixed512` (every text padded to 512 tokens). Same
model, same seeded weights; benchmarks/text_bucketing.py runs both through `modelzoo run`."""
