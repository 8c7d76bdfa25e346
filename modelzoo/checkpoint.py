"""Loading a checkpoint file into a model: safe unpickling, common wrappers, strict keys."""
from __future__ import annotations

import logging
import pickle
from pathlib import Path

import torch

from modelzoo.errors import UserError

log = logging.getLogger(__name__)

# Training scripts save the weights under one of these keys, or as the flat state dict itself.
WRAPPER_KEYS = ("state_dict_ema", "state_dict", "model")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The flat state dict in a checkpoint file; never runs code from the file."""
    path = Path(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise UserError(f"weights file {path} does not exist; check --weights") from None
    except pickle.UnpicklingError as exc:
        # weights_only refuses anything but tensors and plain containers.
        reason = str(exc).splitlines()[0] if str(exc) else "unsafe or unknown content"
        raise UserError(f"{path} is not a plain checkpoint ({reason}); "
                        "only tensors and plain containers are loaded") from None
    except Exception as exc:  # noqa: BLE001 - garbled bytes make the unpickler raise almost anything
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read checkpoint {path} ({reason}); the file is truncated or not a "
                        "PyTorch checkpoint: download it again") from None
    if isinstance(data, dict):
        for key in WRAPPER_KEYS:
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not (isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values())):
        raise UserError(f"{path} holds no state dict (expected tensors by name, flat or under one of "
                        f"{', '.join(WRAPPER_KEYS)}); pass the model's checkpoint file")
    if all(k.startswith("module.") for k in data):  # saved from DataParallel
        data = {k[len("module."):]: v for k, v in data.items()}
    return data


def apply_state_dict(model: torch.nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    """Load `state` into `model`, refusing missing, unexpected or misshaped keys in one line."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
                 for k, v in expected.items() if k in state and state[k].shape != v.shape]
    # float16/float64 weights convert exactly enough; integers for floats (or back) mean a wrong file.
    mistyped = [f"{k} {state[k].dtype} != {v.dtype}".replace("torch.", "")
                for k, v in expected.items()
                if k in state and state[k].dtype.is_floating_point != v.dtype.is_floating_point]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshaped),
                        ("wrong dtype", mistyped)):
        if keys:
            shown = ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")
            problems.append(f"{label}: {shown}")
    if problems:
        raise UserError(f"{path} does not fit the model ({'; '.join(problems)}); "
                        "pass a checkpoint of this model")
    model.load_state_dict(state, strict=True)
    broken = [k for k, v in state.items() if v.dtype.is_floating_point and not torch.isfinite(v).all()]
    if broken:
        log.warning("%s holds NaN or Inf in %d tensor(s) (%s%s); its outputs will be meaningless", path,
                    len(broken), ", ".join(broken[:3]), " ..." if len(broken) > 3 else "")
