from __future__ import annotations

import pickle
import zipfile

import pytest
import torch

from modelzoo.checkpoint import apply_state_dict, read_state_dict
from modelzoo.errors import UserError


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4, 2)


@pytest.fixture
def state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return Small().state_dict()


def equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("wrap", [
    lambda s: s,
    lambda s: {"state_dict": s, "epoch": 3},
    lambda s: {"state_dict_ema": s, "optimizer": {"lr": torch.tensor(0.1)}},
    lambda s: {"model": s},
    lambda s: {"module." + k: v for k, v in s.items()},
    lambda s: {"state_dict": {"module." + k: v for k, v in s.items()}},
], ids=["raw", "state_dict", "state_dict_ema", "model", "module-prefix", "wrapped-and-prefixed"])
def test_wrapped_and_prefixed_checkpoints_unwrap_to_the_same_state(tmp_path, state, wrap):
    path = tmp_path / "ckpt.pth.tar"
    torch.save(wrap(state), path)
    loaded = read_state_dict(path)
    assert equal(loaded, state)
    model = Small()
    apply_state_dict(model, loaded, path)
    assert equal(model.state_dict(), state)


def test_strict_load_names_missing_unexpected_and_misshaped_keys(tmp_path, state):
    path = tmp_path / "x.pth"
    broken = dict(state)
    del broken["fc.bias"]
    broken["extra.weight"] = torch.zeros(1)
    broken["conv.weight"] = torch.zeros(4, 3, 5, 5)
    model = Small()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserError) as info:
        apply_state_dict(model, broken, path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    assert "missing: fc.bias" in message and "unexpected: extra.weight" in message
    assert "conv.weight (4, 3, 5, 5) != (4, 3, 3, 3)" in message
    assert equal(model.state_dict(), before)  # nothing half-loaded


def test_truncated_checkpoint_is_one_line(tmp_path, state):
    path = tmp_path / "full.pth"
    torch.save(state, path)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match="truncated or not a PyTorch checkpoint") as info:
        read_state_dict(cut)
    assert "\n" not in str(info.value) and str(cut) in str(info.value)


@pytest.mark.parametrize("content", [b"", b"hello, not a checkpoint\n"], ids=["empty", "text"])
def test_non_checkpoint_files_are_one_line(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(UserError) as info:
        read_state_dict(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_a_zip_that_is_not_a_checkpoint_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("readme.txt", "hi")
    with pytest.raises(UserError, match=str(path)):
        read_state_dict(path)


def test_a_checkpoint_without_tensors_is_refused(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "arch": "lvvit_s"}, path)
    with pytest.raises(UserError, match="holds no state dict"):
        read_state_dict(path)


class Payload:
    def __reduce__(self):
        import os
        return (os.mkdir, (self.target,))


def test_a_pickle_that_runs_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = Payload()
    payload.target = str(marker)
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": payload}, path)
    assert not marker.exists()
    with pytest.raises(UserError, match="not a plain checkpoint") as info:
        read_state_dict(path)
    assert "\n" not in str(info.value)
    assert not marker.exists()
    # The payload is real: plain unpickling runs it.
    probe = Payload()
    probe.target = str(tmp_path / "probe")
    pickle.loads(pickle.dumps(probe))
    assert (tmp_path / "probe").exists()


def test_missing_weights_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth")


def test_integer_tensors_for_float_weights_are_refused(tmp_path, state):
    broken = dict(state)
    broken["fc.weight"] = torch.zeros(2, 4, dtype=torch.int32)
    with pytest.raises(UserError, match=r"wrong dtype: fc.weight int32 != float32"):
        apply_state_dict(Small(), broken, tmp_path / "x.pth")


def test_float64_weights_load_and_nan_weights_warn(tmp_path, state, caplog):
    doubled = {k: v.double() if v.is_floating_point() else v for k, v in state.items()}
    model = Small()
    apply_state_dict(model, doubled, tmp_path / "x.pth")
    assert torch.allclose(model.fc.weight, state["fc.weight"])
    assert "NaN" not in caplog.text

    poisoned = dict(state)
    poisoned["fc.bias"] = torch.tensor([float("nan"), 1.0])
    poisoned["conv.weight"] = torch.full_like(state["conv.weight"], float("inf"))
    with caplog.at_level("WARNING"):
        apply_state_dict(Small(), poisoned, tmp_path / "nan.pth")
    assert "NaN or Inf in 2 tensor(s)" in caplog.text and "fc.bias" in caplog.text
