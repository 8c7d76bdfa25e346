"""Input files -> batches, and outputs -> result files, as ais_bench does it.

Files are read as raw bytes (.bin) or arrays (.npy), sorted naturally, and grouped into a batch
when each file holds tensor_size/batch bytes. The last batch is padded with a pseudo file whose
outputs are not written. Output files are named
`{basename(first input file).split('.')[0]}_{output_index}.{outfmt.lower()}`.
"""
from __future__ import annotations

import math
import os
import re

import numpy as np

from ais_bench import console
from ais_bench.backend import TensorDesc
from ais_bench.infer.path_check import READ, PathInfo, open_checked
from ais_bench.infer.summary import Summary

PURE_INFER_FAKE_FILE = "pure_infer_data"
PADDING_INFER_FAKE_FILE = "padding_infer_fake_file"
INPUT_SUFFIXES = (".npy", ".NPY", ".bin", ".BIN")


def natural_sort(names: list[str]) -> list[str]:
    def key(name: str) -> list[object]:
        parts = re.split("([0-9]+)", name)
        return [int(part) if part.isdigit() else part.lower() for part in parts]

    return sorted(names, key=key)


def files_in_dir(directory: str) -> list[str]:
    if not os.path.exists(directory):
        console.error(f"dir:{directory} not exist")
        raise RuntimeError()
    files = []
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        info = PathInfo(path)  # every entry, whatever its suffix, must pass the read rules
        if not info.legal(READ):
            raise RuntimeError(f"input data:{path} is illegal")
        if not info.is_dir and name.endswith(INPUT_SUFFIXES):
            files.append(path)
    if not files:
        console.error(f"{directory} of input args not find valid file,"
                      f"valid file format:[*.npy *.NPY *.bin *.BIN]")
        raise RuntimeError()
    return natural_sort(sorted(files))


def file_bytes(path: str) -> np.ndarray:
    """A file's content as ais_bench feeds it: an .npy array, or the raw bytes of anything else."""
    if path.endswith((".npy", ".NPY")):
        return np.load(path)
    with open_checked(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.int8)


def chunks(items: list[str], size: int, padding: str | None) -> list[list[str]]:
    result = []
    for start in range(0, len(items), size):
        chunk = items[start:start + size]
        result.append(chunk + [padding] * (size - len(chunk)))
    return result


def batches_from_inputs(inputs: list[str], descs: list[TensorDesc],
                        no_combine: bool = False) -> list[list[list[str]]]:
    """--input paths -> per run, per model input, the files that make up the batch."""
    if os.path.isfile(inputs[0]):
        for index, path in enumerate(inputs):
            if not os.path.isfile(path):
                console.error(f"Invalid input args.--input:{inputs} input[{index}]:{path} "
                              f"{path} not exist")
                raise RuntimeError()
        per_input = chunks(inputs, len(inputs) // len(descs), PADDING_INFER_FAKE_FILE)
    elif os.path.isdir(inputs[0]):
        if len(inputs) != len(descs):
            console.error(f"Invalid args. args input dir num:{len(inputs)} not equal to model "
                          f"inputs num:{len(descs)}")
            raise RuntimeError()
        per_input = [files_in_dir(d) for d in inputs]
    else:
        console.error(f"Invalid args. {inputs[0]}  of --input is invalid")
        raise RuntimeError()
    if len(per_input) != len(descs):
        console.error(f"fileslist:{len(per_input)} intensor:{len(descs)} not match")
        raise RuntimeError()

    file_size = file_bytes(per_input[0][0]).nbytes
    tensor_size = descs[0].realsize
    if no_combine:
        per_batch = 1
    else:
        if file_size == 0 or tensor_size % file_size != 0:
            console.error(f"arg0 tensorsize: {tensor_size} filesize: {file_size} not match")
            raise RuntimeError()
        per_batch = tensor_size // file_size
    runs = math.ceil(len(per_input[0]) / per_batch)
    console.info(f"get filesperbatch files0 size:{file_size} tensor0size:{tensor_size} "
                 f"filesperbatch:{per_batch} runcount:{runs}")
    grouped = [chunks(files, per_batch, PADDING_INFER_FAKE_FILE) for files in per_input]
    return [[grouped[j][i] for j in range(len(descs))] for i in range(runs)]


def batch_array(files: list[str], size: int, pure_data_type: str) -> np.ndarray:
    """One model input's data for one run: its files concatenated, padding repeating file 0."""
    arrays = []
    for path in files:
        if path == PURE_INFER_FAKE_FILE:
            if pure_data_type == "random":
                # Seeded: the fake stays deterministic where the real tool draws fresh bytes.
                arrays.append(np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8))
            else:
                arrays.append(np.zeros(size, dtype=np.uint8))
        elif path == PADDING_INFER_FAKE_FILE:
            arrays.append(file_bytes(files[0]))
        elif not os.path.exists(path):
            console.error(f"filepath:{path} not valid")
            raise RuntimeError()
        else:
            arrays.append(file_bytes(path))
    if len(arrays) == 1:
        return arrays[0]
    data = np.concatenate([a.reshape(-1).view(np.uint8) for a in arrays])
    if data.nbytes != size:
        console.error(f"ndata size:{data.nbytes} not match {size}")
        raise RuntimeError()
    return data


def save_outputs(outputs: list[np.ndarray], output_prefix: str, infiles: list[list[str]],
                 outfmt: str, run_index: int, axis: int, summary: Summary) -> None:
    """Split each output along `axis` into one part per input file and write the real ones."""
    per_batch = len(infiles[0])
    files_by_sample = list(zip(*infiles))  # sample j -> its file for every model input
    for i, out in enumerate(outputs):
        data = np.asarray(out)
        if axis >= data.ndim:
            console.error(f"error i:{i} ndata.shape:{data.shape} len:{data.ndim} <= "
                          f"output_batchsize_axis:{axis}  is invalid")
            raise RuntimeError()
        if per_batch != 1 and data.shape[axis] % per_batch != 0:
            console.error(f"save out files error array shape:{data.shape} filesinfo:{infiles} "
                          f"files_count_perbatch:{per_batch} ndata.shape{axis}:{data.shape[axis]}")
            raise RuntimeError()
        parts = np.array_split(data, per_batch, axis)
        for j in range(per_batch):
            sample_files = list(files_by_sample[j])
            if sample_files[0] == PADDING_INFER_FAKE_FILE:
                continue
            sample_id = run_index * per_batch + j
            name = os.path.basename(sample_files[0]).split(".")[0]
            path = os.path.join(output_prefix, f"{name}_{i}.{outfmt.lower()}")
            summary.add_sample_id_infiles(sample_id, sample_files)
            summary.append_sample_id_outfile(sample_id, path)
            save_array(path, parts[j])


def save_array(path: str, data: np.ndarray) -> None:
    """Written with the path checks and the 0640 mode of the real tool's file writes."""
    with open_checked(path, "wb") as f:
        if path.endswith((".npy", ".NPY")):
            np.save(f, data)
        elif path.endswith((".txt", ".TXT")):
            # Rows of the array reshaped to (-1, last_dim): each value '%f ' (or '%d ' for integers).
            rows = data.reshape(-1, data.shape[-1]) if data.ndim else data.reshape(1, 1)
            fmt = "%f " if rows.dtype.kind == "f" else "%d "
            for row in rows:
                f.write(("".join(fmt % value for value in row) + "\n").encode())
        else:
            f.write(np.ascontiguousarray(data).tobytes())
