"""One OpenVINO model compiled with a dynamic sequence axis vs a cache of static models, one per
gear (each batch padded up to the smallest gear that holds it), on two encoders:

- small: 2 layers of width 128, 200 batches of 4 with lengths 5..64, gears 8/16/32/64;
- textenc: the text-bucketing benchmark's encoder (4 layers, d_model 256), 40 batches of 8 from 320
  lengths uniform over 8..512 sorted as the runner buckets them, gears the runner derives (powers of
  two from 8, and 512).

Runs interleave, median of 5 (3 for textenc); prints each time, the ratio and that both agree.

    python benchmarks/openvino_dynamic_vs_gears.py [--precision f32|bf16]
"""
import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import openvino as ov
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.plugins.textenc.model import TextEncoder  # noqa: E402

WIDTH, HEADS = 128, 4


class Layer(torch.nn.Module):
    """Self-attention and a feed-forward block; shapes read from tensors, so the export stays dynamic."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.out = torch.nn.Linear(WIDTH, 3 * WIDTH), torch.nn.Linear(WIDTH, WIDTH)
        self.ff = torch.nn.Sequential(torch.nn.Linear(WIDTH, 2 * WIDTH), torch.nn.GELU(),
                                      torch.nn.Linear(2 * WIDTH, WIDTH))
        self.norm1, self.norm2 = torch.nn.LayerNorm(WIDTH), torch.nn.LayerNorm(WIDTH)

    def forward(self, x, bias):
        batch, head = x.shape[0], WIDTH // HEADS
        q, k, v = self.qkv(x).reshape(batch, -1, 3, HEADS, head).permute(2, 0, 3, 1, 4)
        attended = torch.softmax(q @ k.transpose(-1, -2) / head ** 0.5 + bias, -1) @ v
        x = self.norm1(x + self.out(attended.transpose(1, 2).reshape(batch, -1, WIDTH)))
        return self.norm2(x + self.ff(x))


class Encoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(1000, WIDTH)
        self.layers = torch.nn.ModuleList([Layer(), Layer()])
        self.head = torch.nn.Linear(WIDTH, 3)

    def forward(self, ids, mask):
        bias = (1 - mask[:, None, None, :].float()) * -1e9  # padded keys get no attention
        hidden = self.embed(ids)
        for layer in self.layers:
            hidden = layer(hidden, bias)
        weights = mask.unsqueeze(-1).float()
        return self.head((hidden * weights).sum(1) / weights.sum(1).clamp(min=1))


def padded(array: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros((array.shape[0], length), array.dtype)
    out[:, :array.shape[1]] = array
    return out


def export(model: torch.nn.Module, batch: int, names: tuple[str, str]) -> str:
    path = tempfile.mkdtemp() + "/encoder.onnx"
    ids = torch.ones(batch, 16, dtype=torch.long)
    torch.onnx.export(model.eval(), (ids, ids), path, input_names=list(names), output_names=["y"],
                      dynamic_axes={name: {1: "seq"} for name in names}, opset_version=14, dynamo=False)
    return path


def measure(path: str, names: tuple[str, str], batches: list[np.ndarray], gears: list[int], precision: str,
            rounds: int) -> dict:
    """Seconds for all `batches` (token ids; a mask of ones) through each form, median of `rounds`."""
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": precision}
    dynamic = core.compile_model(path, "CPU", config)
    static = {}
    for gear in gears:
        model = core.read_model(path)
        model.reshape({name: [len(batches[0]), gear] for name in names})
        static[gear] = core.compile_model(model, "CPU", config)

    def inputs(ids: np.ndarray, length: int) -> dict:
        return dict(zip(names, (padded(ids, length), padded(np.ones_like(ids), length))))

    def run_dynamic() -> None:
        request = dynamic.create_infer_request()
        for ids in batches:
            request.infer(inputs(ids, ids.shape[1]))

    def run_static() -> None:
        requests = {gear: compiled.create_infer_request() for gear, compiled in static.items()}
        for ids in batches:
            gear = next(g for g in gears if g >= ids.shape[1])
            requests[gear].infer(inputs(ids, gear))

    run_dynamic(), run_static()  # every shape seen once before timing
    times = {"dynamic": [], "static per gear": []}
    for _ in range(rounds):
        for name, runner in (("dynamic", run_dynamic), ("static per gear", run_static)):
            start = time.perf_counter()
            runner()
            times[name].append(time.perf_counter() - start)
    median = {name: round(float(np.median(t)), 3) for name, t in times.items()}
    ids = batches[0]
    gear = next(g for g in gears if g >= ids.shape[1])
    diff = float(np.abs(dynamic(inputs(ids, ids.shape[1]))[0] - static[gear](inputs(ids, gear))[0]).max())
    return {**median, "ratio": round(median["dynamic"] / median["static per gear"], 3), "max_abs_diff": diff}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--precision", default="f32", help="OpenVINO's INFERENCE_PRECISION_HINT (f32, bf16)")
    precision = parser.parse_args().precision
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    small = [rng.integers(1, 1000, (4, n)) for n in rng.integers(5, 65, 200)]
    lengths = np.sort(rng.integers(8, 513, 320))
    textenc = [rng.integers(1, 1000, (8, int(lengths[i:i + 8].max()))) for i in range(0, 320, 8)]
    cases = {"small": (Encoder(), ("ids", "mask"), small, [8, 16, 32, 64], 5),
             "textenc": (TextEncoder(), ("input_ids", "attention_mask"), textenc, [8, 16, 32, 64, 128, 256, 512], 3)}
    for name, (model, names, batches, gears, rounds) in cases.items():
        figures = measure(export(model, len(batches[0]), names), names, batches, gears, precision, rounds)
        print(f"{name} ({precision}): dynamic {figures['dynamic']} s, static per gear {figures['static per gear']} s, "
              f"dynamic/static time ratio {figures['ratio']}; max |diff| {figures['max_abs_diff']:.1e}", flush=True)


if __name__ == "__main__":
    main()
