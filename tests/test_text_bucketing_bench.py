"""The text-bucketing benchmark's plugins (benchmarks/plugins/textenc): the texts it generates, and a
model whose predictions padding cannot change and whose ONNX runs at every length. Nothing is timed."""
from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from benchmarks.plugins.textenc import model as textenc
from benchmarks.plugins.textenc.dynamic.plugin import MANIFEST as DYNAMIC
from benchmarks.plugins.textenc.task import (
    MAX_TOKENS,
    MIN_TOKENS,
    TextTask,
    collate_to_longest,
    preprocess_padded,
    preprocess_tokens,
    tokenize,
    write_texts,
)
from modelzoo.export import export_onnx


def seeded_model() -> torch.nn.Module:
    model = textenc.build("standard")
    textenc.init_random(model, 0)
    return model


def logits(model: torch.nn.Module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(feeds["input_ids"]), torch.from_numpy(feeds["attention_mask"])).numpy()


def test_generated_texts_spread_over_the_axis_and_tokenize_to_their_lengths(tmp_path):
    lengths = write_texts(tmp_path / "a", 300, seed=3)
    assert write_texts(tmp_path / "b", 300, seed=3) == lengths
    assert (tmp_path / "a" / "texts.jsonl").read_bytes() == (tmp_path / "b" / "texts.jsonl").read_bytes()
    assert MIN_TOKENS <= min(lengths) < MIN_TOKENS + 50 and MAX_TOKENS - 50 < max(lengths) <= MAX_TOKENS
    # Uniform: each quarter of the range holds about a quarter of the texts.
    quarters = np.histogram(lengths, bins=4, range=(MIN_TOKENS, MAX_TOKENS + 1))[0]
    assert all(40 <= count <= 110 for count in quarters), quarters
    samples = TextTask().load_dataset(tmp_path / "a").samples
    assert [len(tokenize(s.source)) for s in samples] == lengths
    assert len({s.key for s in samples}) == 300


def test_padding_never_changes_a_text_s_logits_and_the_layers_compute_what_torch_s_encoder_does():
    model = seeded_model()
    rng = np.random.default_rng(0)
    texts = [" ".join(f"w{n}" for n in rng.integers(0, 20_000, length)) for length in (8, 97, 300)]
    alone = np.concatenate([logits(model, collate_to_longest([preprocess_tokens(t)])) for t in texts])
    to_longest = logits(model, collate_to_longest([preprocess_tokens(t) for t in texts]))
    rows = [preprocess_padded(t) for t in texts]
    to_512 = logits(model, {name: np.stack([row[name] for row in rows]) for name in rows[0]})
    np.testing.assert_allclose(to_longest, alone, atol=1e-5)
    np.testing.assert_allclose(to_512, alone, atol=1e-5)
    assert np.ptp(alone, axis=0).max() > 0.1  # the texts' logits differ: equal figures are not a given
    feeds = {name: torch.from_numpy(array) for name, array in collate_to_longest(
        [preprocess_tokens(t) for t in texts]).items()}
    with torch.no_grad():
        hidden = model.encoder(model.embedded(feeds["input_ids"]), src_key_padding_mask=feeds["attention_mask"] == 0)
        reference = model.pooled(hidden, feeds["attention_mask"]).numpy()
    np.testing.assert_allclose(to_longest, reference, atol=1e-5)


def test_the_dynamic_model_s_onnx_runs_at_the_shortest_and_longest_lengths(tmp_path):
    model = seeded_model()
    path = tmp_path / "textenc.onnx"
    rng = np.random.default_rng(1)
    traced = collate_to_longest([{"input_ids": rng.integers(1, 1000, 128)}] * 2)
    export_onnx(model, DYNAMIC, path, 2, traced)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for length in (MIN_TOKENS, MAX_TOKENS):
        feeds = collate_to_longest([{"input_ids": rng.integers(1, 1000, length)},
                                    {"input_ids": rng.integers(1, 1000, length // 2)}])
        np.testing.assert_allclose(session.run(None, feeds)[0], logits(model, feeds), atol=1e-4)
