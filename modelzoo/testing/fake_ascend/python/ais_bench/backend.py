"""The fake aclruntime: devices, model loading and execution, timing, failure switches.

A model is a fake .om (om_file.py); executing it runs its ONNX model with ONNX Runtime on the raw
input bytes, reinterpreted with the model's dtype and shape as a real NPU would.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

import numpy as np

from ais_bench import console
from ais_bench.om_file import OmManifest, TensorInfo, read_om

SOC_ENV = "MODELZOO_FAKE_AIS_SOC"
CRASH_ENV = "MODELZOO_FAKE_AIS_CRASH_AFTER"
# What the real pybind layer raises for any failed ACL call: GetError(APP_ERR_ACL_FAILURE).
ACL_FAILURE = "[-1][ACL: general failure] "
ACL_CONTEXT_ERROR = 107002  # ACL_ERROR_INVALID_CONTEXT

BASE_MS = 2.0
PER_SAMPLE_MS = 0.25


def compute_time_ms(batch: int) -> float:
    """Deterministic NPU time of one execution; binary-exact so means and throughputs are exact."""
    return BASE_MS + PER_SAMPLE_MS * batch


class dtype(IntEnum):
    float32 = 0
    float16 = 1
    int8 = 2
    int32 = 3
    uint8 = 4
    int16 = 6
    uint16 = 7
    uint32 = 8
    int64 = 9
    uint64 = 10
    double = 11
    bool = 12

    def __str__(self) -> str:
        return f"dtype.{self.name}"

    @classmethod
    def from_numpy(cls, name: str) -> dtype:
        return cls[{"float64": "double"}.get(name, name)]

    def numpy(self) -> np.dtype:
        return np.dtype({"double": "float64"}.get(self.name, self.name))


FORMATS = {"NCHW": 0, "NHWC": 1, "ND": 2, "NC1HWC0": 3, "NDHWC": 27, "NCDHW": 30}


@dataclass
class TensorDesc:
    """aclruntime.tensor_desc: shape has -1 on dynamic axes; realsize is the current byte size."""

    name: str
    datatype: dtype
    format: int
    shape: list[int]
    size: int
    realsize: int


@dataclass
class SessionOptions:
    loop: int = 1
    log_level: int = 2
    acl_json_path: str = ""


@dataclass
class Summary:
    exec_time_list: list[tuple[float, float]] = field(default_factory=list)


class _Runtime:
    """Process-wide ACL state: which devices are open, which model id comes next, and the order
    in which models were loaded and released and ACL finalized (for tests to read)."""

    def __init__(self) -> None:
        self.devices: list[int] = []
        self.model_ids = 0
        self.generation = 0  # one per ACL initialisation: finalize() ends it
        # ("load", model id, device) / ("unload", model id) / ("finalize",), in order.
        self.events: list[tuple] = []
        self.late_releases: list[int] = []  # models released after ACL was finalized

    def open(self, device_id: int) -> None:
        if not self.devices:
            console.info("acl init success")
        if device_id not in self.devices:
            self.devices.append(device_id)
            console.info(f"open device {device_id} success")
            console.info("create new context")

    def finalize(self) -> None:
        """Reset every device and finalize ACL: models still loaded are gone with them."""
        if not self.devices:
            return
        for device_id in self.devices:
            console.info(f"end to reset device {device_id}")
        console.info("end to finalize acl")
        self.devices.clear()
        self.model_ids = 0  # a new ACL session numbers its models from 1 again
        self.generation += 1
        self.events.append(("finalize",))


RUNTIME = _Runtime()


class Session:
    """aclruntime.InferenceSession over a fake .om."""

    def __init__(self, model_path: str, device_id: int, options: SessionOptions) -> None:
        self._options = options
        self.device_id = device_id
        self.loaded = False
        RUNTIME.open(device_id)
        self.manifest, onnx_bytes = self._load(model_path)
        RUNTIME.model_ids += 1
        self.model_id = RUNTIME.model_ids
        self.generation = RUNTIME.generation
        self.loaded = True
        RUNTIME.events.append(("load", self.model_id, device_id))
        console.info(f"load model {model_path} success")
        console.info("create model description success")
        self._ort = _ort_session(onnx_bytes, self.manifest.inputs)
        self._inputs = [_desc(t, self.manifest) for t in self.manifest.inputs]
        self._outputs = [_desc(t, self.manifest) for t in self.manifest.outputs]
        self._shapes = [list(t.shape) for t in self.manifest.inputs]  # shapes of the next run
        self.set_staticbatch()
        self.exec_time_list: list[tuple[float, float]] = []
        self._clock_ms = 0.0
        self._runs = 0

    @staticmethod
    def _load(model_path: str) -> tuple[OmManifest, bytes]:
        try:
            manifest, onnx_bytes = read_om(Path(model_path))
        except (OSError, ValueError):
            console.error(f"load model from file failed, model file is {model_path}")
            raise RuntimeError(ACL_FAILURE) from None
        chip = os.environ.get(SOC_ENV)
        if chip and chip != manifest.soc_version:
            console.raw(f"[ACL ERROR] EE1001: The argument is invalid.Reason: "
                        f"ModelCheckCompatibility failed, supported socVersion={chip}, "
                        f"but the model socVersion={manifest.soc_version}")
            console.error(f"load model from file failed, model file is {model_path}")
            raise RuntimeError(ACL_FAILURE)
        return manifest, onnx_bytes

    def options(self) -> SessionOptions:
        return self._options

    def get_inputs(self) -> list[TensorDesc]:
        return self._inputs

    def get_outputs(self) -> list[TensorDesc]:
        return self._outputs

    def set_staticbatch(self) -> None:
        """Without a dynamic setting a geared model runs at its largest gear."""
        largest = self.manifest.largest_profile()
        for i, info in enumerate(self.manifest.inputs):
            self._shapes[i] = list(largest[info.name]) if largest else list(info.shape)
            self._inputs[i].realsize = self._inputs[i].size

    def get_max_dym_batchsize(self) -> int:
        return max(self.manifest.dynamic_batch_sizes, default=-1)

    def set_dynamic_batchsize(self, batch: int) -> None:
        gears = self.manifest.dynamic_batch_sizes
        if not gears:
            console.error("the dynamic_batch_size parameter is not specified for model conversion")
            raise RuntimeError(ACL_FAILURE)
        if batch not in gears:
            console.error("the dymBatch parameter is not correct")
            raise RuntimeError(ACL_FAILURE)
        console.info("check dynamic batch success")
        for i, info in enumerate(self.manifest.inputs):
            if -1 in info.shape:
                self._shapes[i] = [batch if d == -1 else d for d in info.shape]
                self._inputs[i].realsize = self._inputs[i].size * batch // max(gears)

    def set_dynamic_shape(self, text: str) -> None:
        """'name:1,3,224,224;name2:...' sets the shapes of a dynamic-shape model's inputs."""
        given = {}
        for item in text.strip().strip(";").split(";"):
            name, _, dims = item.rpartition(":")
            given[name] = [int(d) for d in dims.split(",")]
        for i, info in enumerate(self.manifest.inputs):
            shape = given.get(info.name)
            if shape is None or not _fits(shape, info):
                console.error("check dynamic shape failed")
                raise RuntimeError(ACL_FAILURE)
            self._shapes[i] = shape
            self._inputs[i].realsize = math.prod(shape) * np.dtype(info.dtype).itemsize

    def set_dynamic_hw(self, height: int, width: int) -> None:
        """The gear of an image-size model; the first value is the height, as ACL's
        aclmdlSetDynamicHWSize(model, dataset, index, height, width) takes it."""
        gears = self.manifest.dynamic_image_size
        if not gears:
            console.error("the dynamic_image_size parameter is not specified for model conversion")
            raise RuntimeError(ACL_FAILURE)
        if [height, width] not in gears:
            console.error(f"the dymHW parameter is not correct: {height},{width} is not one of "
                          f"{';'.join(f'{h},{w}' for h, w in gears)}")
            raise RuntimeError(ACL_FAILURE)
        self._set_profile(self.manifest.profiles()[gears.index([height, width])])

    def set_dynamic_dims(self, text: str) -> None:
        """'name:1,16;name2:1,16': the names are dropped and the values matched, in order, with
        every gear's input shapes in --input_shape's order (as aclruntime and ACL do)."""
        if not self.manifest.dynamic_dims:
            console.error("the dynamic_dims parameter is not specified for model conversion")
            raise RuntimeError(ACL_FAILURE)
        values = [int(v) for item in text.split(";") for v in item.rpartition(":")[2].split(",") if v]
        order = self.manifest.input_shape_order
        for index, profile in enumerate(self.manifest.profiles()):
            dims = [d for name in order for d in profile[name]]
            if len(values) != len(dims):
                console.error(f"the dymDims parameter is not correct i:{index} dysize:{len(values)} "
                              f"dimcount:{len(dims)}")
                raise RuntimeError(ACL_FAILURE)
            if values == dims:
                self._set_profile(profile)
                return
        console.error("the dynamic_dims parameter is not correct")
        raise RuntimeError(ACL_FAILURE)

    def _set_profile(self, profile: dict[str, list[int]]) -> None:
        for i, info in enumerate(self.manifest.inputs):
            self._shapes[i] = list(profile[info.name])
            self._inputs[i].realsize = math.prod(profile[info.name]) * np.dtype(info.dtype).itemsize

    def set_custom_outsize(self, sizes: list[int]) -> None:
        self.custom_sizes = list(sizes)  # outputs come from ONNX Runtime whatever their size

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Execute the model `loop` times on raw input bytes; record one time per execution."""
        crash_after = os.environ.get(CRASH_ENV)
        if crash_after is not None and self._runs >= int(crash_after):
            console.error(f"execute model failed, modelId is {self.model_id}")
            raise RuntimeError(ACL_FAILURE)
        if len(feeds) != len(self._inputs):
            console.error(f"intensors size:{len(feeds)} need size:{len(self._inputs)} not match")
            raise RuntimeError(ACL_FAILURE)
        ort_feeds = {}
        for i, (feed, desc) in enumerate(zip(feeds, self._inputs)):
            data = np.ascontiguousarray(feed)
            if data.nbytes != desc.realsize:
                console.error(f"Check i:{i} name:{desc.name} in size:{data.nbytes} "
                              f"needsize:{desc.realsize} not match")
                raise RuntimeError(ACL_FAILURE)
            raw = np.frombuffer(data.tobytes(), dtype=desc.datatype.numpy())
            ort_feeds[desc.name] = raw.reshape(self._shapes[i])
        outputs = self._ort.run([d.name for d in self._outputs], ort_feeds)
        first_shape = self._shapes[0] if self._shapes else []
        elapsed = compute_time_ms(first_shape[0] if first_shape else 1)
        for _ in range(self._options.loop):
            self.exec_time_list.append((self._clock_ms, self._clock_ms + elapsed))
            self._clock_ms += elapsed
        self._runs += 1
        return outputs

    def reset_summaryinfo(self) -> None:
        self.exec_time_list = []
        self._runs = 0

    def summary(self) -> Summary:
        return Summary(list(self.exec_time_list))

    def free_resource(self) -> None:
        """Unload the model (the current API's free_resource)."""
        if not self.loaded:
            return
        self.loaded = False
        if self.generation != RUNTIME.generation:
            # ACL was finalized and the device reset under this model: setting its context fails.
            RUNTIME.late_releases.append(self.model_id)
            console.error(f"TensorContext::SetContext failed. ret={ACL_CONTEXT_ERROR}")
            raise RuntimeError(ACL_FAILURE)
        console.info(f"unload model success, model Id is {self.model_id}")
        RUNTIME.events.append(("unload", self.model_id))

    def finalize_with_model(self) -> None:
        """The June 2023 instance finalize(): unload this model, then finalize ACL."""
        try:
            self.free_resource()
        finally:
            RUNTIME.finalize()

    def __del__(self) -> None:
        # The June 2023 API releases a model only here (or in finalize_with_model); a failure
        # cannot be raised from a destructor, only logged, as the real one does.
        try:
            self.free_resource()
        except Exception:  # noqa: BLE001 - recorded in RUNTIME.late_releases
            pass

    @staticmethod
    def finalize() -> None:
        RUNTIME.finalize()


def _fits(shape: list[int], info: TensorInfo) -> bool:
    if len(shape) != len(info.shape):
        return False
    for axis, (dim, declared) in enumerate(zip(shape, info.shape)):
        if declared != -1 and dim != declared:
            return False
        if info.ranges:
            low, high = info.ranges[axis]
            if dim < low or (high != -1 and dim > high):
                return False
    return True


def _desc(info: TensorInfo, manifest: OmManifest) -> TensorDesc:
    largest = manifest.largest_profile()
    dims = largest.get(info.name, info.shape) if largest else info.shape
    if info.ranges:  # a '~' range: the buffer is sized for the largest shape when bounded
        dims = [high if declared == -1 else declared
                for declared, (_, high) in zip(info.shape, info.ranges)]
    itemsize = np.dtype(info.dtype).itemsize
    size = 0 if -1 in dims else math.prod(dims) * itemsize
    return TensorDesc(info.name, dtype.from_numpy(info.dtype), FORMATS.get(info.format, 2),
                      list(info.shape), size, size)


def _ort_session(onnx_bytes: bytes, inputs: list[TensorInfo]):  # -> ort.InferenceSession
    import onnx
    import onnxruntime as ort

    # --input_shape may override a static ONNX dim (ATC re-infers the graph); free those dims so
    # ONNX Runtime accepts the compiled shape.
    model = onnx.load_from_string(onnx_bytes)
    shapes = {t.name: t.shape for t in inputs}
    overridden = False
    for vi in model.graph.input:
        for axis, (dim, size) in enumerate(zip(vi.type.tensor_type.shape.dim,
                                               shapes.get(vi.name, []))):
            if dim.HasField("dim_value") and dim.dim_value != size:
                dim.dim_param = f"{vi.name}_{axis}"
                overridden = True
    if overridden:
        onnx_bytes = model.SerializeToString()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # keep ORT warnings out of the emulated console
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
