"""One OpenVINO model compiled with a dynamic sequence axis vs a cache of static models, one per
gear, on a small masked encoder: 200 batches of 4 with lengths 5..64, gears 8/16/32/64 (each batch
padded up to its gear). Runs interleave, median of 5; prints the time ratio and that both agree.

    python benchmarks/openvino_dynamic_vs_gears.py
"""
import tempfile
import time
import warnings

import numpy as np
import openvino as ov
import torch

GEARS = [8, 16, 32, 64]
BATCH, WIDTH, HEADS = 4, 128, 4


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


def main() -> None:
    warnings.simplefilter("ignore")
    torch.manual_seed(0)
    onnx_path = tempfile.mkdtemp() + "/encoder.onnx"
    ids = torch.ones(BATCH, 16, dtype=torch.long)
    torch.onnx.export(Encoder().eval(), (ids, ids), onnx_path, input_names=["ids", "mask"], output_names=["y"],
                      dynamic_axes={"ids": {1: "seq"}, "mask": {1: "seq"}}, opset_version=14, dynamo=False)
    core = ov.Core()
    config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": "f32"}
    dynamic = core.compile_model(onnx_path, "CPU", config)
    static = {}
    for gear in GEARS:
        model = core.read_model(onnx_path)
        model.reshape({"ids": [BATCH, gear], "mask": [BATCH, gear]})
        static[gear] = core.compile_model(model, "CPU", config)
    rng = np.random.default_rng(0)
    batches = [(rng.integers(1, 1000, (BATCH, n)), np.ones((BATCH, n), np.int64)) for n in rng.integers(5, 65, 200)]

    def run_dynamic() -> None:
        request = dynamic.create_infer_request()
        for ids, mask in batches:
            request.infer({"ids": ids, "mask": mask})

    def run_static() -> None:
        requests = {gear: compiled.create_infer_request() for gear, compiled in static.items()}
        for ids, mask in batches:
            gear = next(g for g in GEARS if g >= ids.shape[1])
            requests[gear].infer({"ids": padded(ids, gear), "mask": padded(mask, gear)})

    run_dynamic(), run_static()  # every shape seen once before timing
    times = {"dynamic": [], "static per gear": []}
    for _ in range(5):
        for name, runner in (("dynamic", run_dynamic), ("static per gear", run_static)):
            start = time.perf_counter()
            runner()
            times[name].append(time.perf_counter() - start)
    median = {name: float(np.median(t)) for name, t in times.items()}
    print({name: round(t, 3) for name, t in median.items()},
          "dynamic/static time ratio", round(median["dynamic"] / median["static per gear"], 3))
    ids, mask = batches[0]
    gear = next(g for g in GEARS if g >= ids.shape[1])
    print("max |diff| dynamic vs padded static:", float(np.abs(
        dynamic({"ids": ids, "mask": mask})[0] - static[gear]({"ids": padded(ids, gear), "mask": padded(mask, gear)})[0]
    ).max()))


if __name__ == "__main__":
    main()
