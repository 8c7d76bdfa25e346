"""`from ais_bench.infer.interface import InferSession`, in its current or its June 2023 form.

MODELZOO_FAKE_AIS_API=old selects the old form when `InferSession` is imported (module
__getattr__, so a test can switch without reloading the module).
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from ais_bench.backend import Session, SessionOptions, Summary, TensorDesc
from ais_bench.infer.path_check import OM_MAX_SIZE, READ, check_path

API_ENV = "MODELZOO_FAKE_AIS_API"
MODES = ("static", "dymbatch", "dymhw", "dymdims", "dymshape")


class _InferSessionBase:
    """What both API generations share."""

    def __init__(self, device_id: int, model_path: str, acl_json_path: str | None = None,
                 debug: bool = False, loop: int = 1) -> None:
        if not isinstance(device_id, int) or not 0 <= device_id <= 255:
            raise ValueError(f"device id:{device_id} is invalid. valid value range is [0, 255]")
        if not isinstance(loop, int) or loop <= 0:
            raise ValueError(f"loop:{loop} is invalid, it should be a positive integer")
        self.device_id = device_id
        self.model_path = model_path
        self.loop = loop
        self.options = SessionOptions(loop=loop, log_level=1 if debug else 2,
                                      acl_json_path=acl_json_path or "")
        self.session = Session(model_path, device_id, self.options)
        self.outputs_names = [desc.name for desc in self.session.get_outputs()]

    def get_inputs(self) -> list[TensorDesc]:
        return self.session.get_inputs()

    def get_outputs(self) -> list[TensorDesc]:
        return self.session.get_outputs()

    def set_loop_count(self, loop: int) -> None:
        self.session.options().loop = loop

    def set_staticbatch(self) -> None:
        self.session.set_staticbatch()

    def set_dynamic_batchsize(self, batch: int) -> None:
        self.session.set_dynamic_batchsize(int(batch))

    def set_dynamic_hw(self, height: int, width: int) -> None:
        self.session.set_dynamic_hw(height, width)

    def set_dynamic_dims(self, dims: str) -> None:
        self.session.set_dynamic_dims(dims)

    def set_dynamic_shape(self, shape: str) -> None:
        self.session.set_dynamic_shape(shape)

    def set_custom_outsize(self, sizes: list[int]) -> None:
        self.session.set_custom_outsize(sizes)

    def get_max_dym_batchsize(self) -> int:
        return self.session.get_max_dym_batchsize()

    # Device tensors are plain numpy arrays in the fake, so these conversions are identities.
    def create_tensor_from_arrays_to_device(self, array: np.ndarray) -> np.ndarray:
        return array

    @staticmethod
    def convert_tensors_to_host(tensors: list[Any]) -> None:
        return None

    @staticmethod
    def convert_tensors_to_arrays(tensors: list[Any]) -> list[np.ndarray]:
        return [np.array(t) for t in tensors]

    def run(self, feeds: list[Any], out_array: bool = False) -> list[np.ndarray]:
        return self.session.run([np.asarray(f) for f in feeds])

    @staticmethod
    def _to_array(feed: Any) -> np.ndarray:
        """numpy arrays, numpy scalars and torch tensors, as the real infer() accepts."""
        if isinstance(feed, np.ndarray):
            return np.ascontiguousarray(feed)
        if isinstance(feed, np.generic):
            return np.array(feed)
        if hasattr(feed, "type") and hasattr(feed, "numpy"):  # a CPU torch tensor
            return np.ascontiguousarray(feed.numpy())
        raise RuntimeError(f"type:{type(feed)} invalid")

    def shape_string(self, shapes: list[tuple[int, ...]]) -> str:
        """'name1:1,3,224,224;name2:...' for the model's inputs, as set_dynamic_shape takes it."""
        names = [desc.name for desc in self.get_inputs()]
        return ";".join(f"{n}:{','.join(str(d) for d in s)}" for n, s in zip(names, shapes))

    def _set_dymshape(self, shapes: list[tuple[int, ...]], custom_sizes: Any) -> None:
        self.session.set_dynamic_shape(self.shape_string(shapes))
        if isinstance(custom_sizes, int):
            custom_sizes = [custom_sizes] * len(self.get_outputs())
        elif not isinstance(custom_sizes, list):
            raise RuntimeError(f"custom_sizes:{custom_sizes} type:{type(custom_sizes)} invalid")
        self.session.set_custom_outsize(custom_sizes)


class NewInferSession(_InferSessionBase):
    """The current API (Ascend/tools 2024+, aclruntime): it vets its arguments before loading."""

    def __init__(self, device_id: int, model_path: str, acl_json_path: str | None = None,
                 debug: bool = False, loop: int = 1) -> None:
        if not model_path:
            raise RuntimeError("empty model path!")
        check_path(model_path, READ, suffix="om", max_size=OM_MAX_SIZE)
        if acl_json_path:
            check_path(acl_json_path, READ, suffix="json")
        if not isinstance(device_id, int):
            raise TypeError(f"device:{device_id} is not a integer!")
        super().__init__(device_id, model_path, acl_json_path, debug, loop)

    def infer(self, feeds: list[Any], mode: str = "static", custom_sizes: Any = 100000,
              out_array: bool = True) -> list[np.ndarray]:
        if not isinstance(feeds, list) or not feeds:
            raise ValueError("feeds should be a non-empty list")
        if not isinstance(out_array, bool):
            raise ValueError(f"out_array:{out_array} should be a bool")
        if mode not in MODES:
            raise RuntimeError(f'wrong infer_mode:{mode}, only support "static","dymbatch",'
                               f'"dymhw","dymdims","dymshape"')
        arrays = [self._to_array(f) for f in feeds]
        shapes = [a.shape for a in arrays]
        if mode == "static":
            self.session.set_staticbatch()
        elif mode == "dymbatch":
            self._set_dymbatch(shapes)
        elif mode == "dymhw":
            self.session.set_dynamic_hw(shapes[0][2], shapes[0][3])
        elif mode == "dymdims":
            self.session.set_dynamic_dims(self.shape_string(shapes))
        else:
            self._set_dymshape(shapes, custom_sizes)
        return self.run(arrays, out_array)

    def _set_dymbatch(self, shapes: list[tuple[int, ...]]) -> None:
        descs = self.get_inputs()
        if len(shapes) != len(descs):
            raise RuntimeError("input datas and intensors nums not matched!")
        for shape, desc in zip(shapes, descs):
            for dim, declared in zip(shape, desc.shape):
                if declared < 0:
                    self.session.set_dynamic_batchsize(dim)
                    return
                if declared != dim:
                    raise RuntimeError("input datas and intensors dim not matched!")
        raise RuntimeError("not a dymbatch model!")

    def reset_summaryinfo(self) -> None:
        self.session.reset_summaryinfo()

    def summary(self) -> Summary:
        """exec_time_list holds one (start_ms, end_ms) pair per model execution."""
        return self.session.summary()

    def free_resource(self) -> None:
        self.session.free_resource()

    def __enter__(self) -> NewInferSession:
        return self

    def __exit__(self, *exc: object) -> bool:
        self.free_resource()
        return False

    @staticmethod
    def finalize() -> None:
        Session.finalize()


class OldTimeList(list):
    """What old `sumary()` gives: the execution times in ms (also as `.exec_time_list`)."""

    @property
    def exec_time_list(self) -> list[float]:
        return list(self)


class OldInferSession(_InferSessionBase):
    """The June 2023 API (Ascend/tools ais-bench_workload): misspelled summary methods."""

    def infer(self, feeds: list[Any], mode: str = "static",
              custom_sizes: Any = 100000) -> list[np.ndarray]:
        arrays = [self._to_array(f) for f in feeds]
        if mode == "dymshape":
            self._set_dymshape([a.shape for a in arrays], custom_sizes)
        elif mode == "dymdims":
            self.session.set_dynamic_dims(self.shape_string([a.shape for a in arrays]))
        return self.run(arrays, out_array=True)

    def reset_sumaryinfo(self) -> None:
        self.session.reset_summaryinfo()

    def sumary(self) -> OldTimeList:
        return OldTimeList(end - start for start, end in self.session.exec_time_list)

    def finalize(self) -> None:
        """Unloads this session's model, then resets every device and finalizes ACL."""
        self.session.finalize_with_model()


def __getattr__(name: str) -> type:
    if name == "InferSession":
        return OldInferSession if os.environ.get(API_ENV) == "old" else NewInferSession
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
