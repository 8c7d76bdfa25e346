"""`python -m ais_bench`: load, warm up, run every batch, write outputs and the summary.

Follows ais_bench's infer_process (the version preserved in Yanguan619/aclruntime at 8da7f645).
Multi-device runs go device after device in this process instead of a process pool, so their
console blocks do not interleave; folders and lines are the real ones.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import time

import numpy as np

from ais_bench import console
from ais_bench.infer.args import build_parser, check_int_limits, check_rules
from ais_bench.infer.interface import NewInferSession
from ais_bench.infer.io_operations import (
    PURE_INFER_FAKE_FILE,
    batch_array,
    batches_from_inputs,
    files_in_dir,
    save_outputs,
)
from ais_bench.infer.path_check import READ, check_path, makedirs
from ais_bench.infer.summary import Summary

PROGRESS_LABELS = {"array": "Inference array Processing", "files": "Inference files Processing",
                   "tensor": "Inference tensor Processing", "full": "Inference Processing full"}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_int_limits(args)
    check_rules(args)
    if args.dym_shape_range is not None and args.dym_shape is None:
        raise RuntimeError("the fake ais_bench does not emulate --dymShape_range")
    if isinstance(args.device, list):
        return multidevice_run(args)
    run_on_device(args)
    return 0


def set_session_options(session: NewInferSession, args: argparse.Namespace) -> None:
    if args.dym_batch != 0:
        session.set_dynamic_batchsize(args.dym_batch)
    elif args.dym_hw is not None:
        height, width = args.dym_hw.split(",")
        session.set_dynamic_hw(int(height), int(width))
    elif args.dym_dims is not None:
        session.set_dynamic_dims(args.dym_dims)
    elif args.dym_shape is not None:
        session.set_dynamic_shape(args.dym_shape)
    else:
        session.set_staticbatch()
    if args.batchsize is None:
        args.batchsize = model_batchsize(session, args)
        console.info(f"try get model batchsize:{args.batchsize}")
    if not args.no_combine_tensor_mode and args.batchsize < 0:
        if not (args.dym_batch or args.dym_dims or args.dym_shape):
            raise RuntimeError("dynamic batch om model detected, but dymbatch, dymdims or "
                               "dymshape not set!")
    if args.output_size is not None:
        session.set_custom_outsize([int(n) for n in args.output_size.split(",")])


def model_batchsize(session: NewInferSession, args: argparse.Namespace) -> int:
    desc = session.get_inputs()[0]
    batch = desc.shape[0] if desc.shape else 1
    if args.dym_batch != 0:
        return args.dym_batch
    for text in (args.dym_dims, args.dym_shape):
        for item in (text or "").split(";"):
            name, _, dims = item.rpartition(":")
            if name == desc.name:
                batch = int(dims.split(",")[0])
    return batch


def output_prefix_for(args: argparse.Namespace, timestr: str, index: int,
                      device_list: list[int] | None) -> str | None:
    if args.output is None:
        return None
    base = args.output_dirname if args.output_dirname is not None else timestr
    prefix = os.path.join(args.output, base)
    if device_list is not None and len(device_list) > 1:
        prefix = os.path.join(prefix, f"device{device_list[index]}_{index}")
    if os.path.exists(prefix):
        check_path(prefix, READ, is_file=False)  # what an earlier run left must still pass
    else:
        makedirs(prefix)
    console.info(f"output path:{prefix}")
    return prefix


def run_inference(session: NewInferSession, args: argparse.Namespace,
                  arrays: list[np.ndarray], summary: Summary) -> list[np.ndarray]:
    if args.auto_set_dymshape_mode:
        session.set_dynamic_shape(session.shape_string([a.shape for a in arrays]))
        summary.batchsizes.append(arrays[0].shape[0])
    return session.run(arrays)


def run_on_device(args: argparse.Namespace, index: int = 0, device_list: list[int] | None = None,
                  timestr: str | None = None) -> tuple[float, float, float]:
    """One device's whole run; returns (throughput, start_time, end_time)."""
    session = NewInferSession(args.device, args.model, args.acl_json_path, args.debug, args.loop)
    set_session_options(session, args)
    descs = session.get_inputs()
    prefix = output_prefix_for(args, timestr or time.strftime("%Y_%m_%d-%H_%M_%S"), index,
                               device_list)
    if args.input is None:
        infileslist = [[[PURE_INFER_FAKE_FILE] for _ in descs]]
    else:
        infileslist = batches_from_inputs(args.input.split(","), descs, args.no_combine_tensor_mode)
    summary = Summary()

    def arrays_for(infiles: list[list[str]]) -> list[np.ndarray]:
        return [batch_array(files, descs[j].realsize, args.pure_data_type)
                for j, files in enumerate(infiles)]

    warmup_arrays = arrays_for(infileslist[0])
    session.set_loop_count(1)
    for _ in range(args.warmup_count):
        run_inference(session, args, warmup_arrays, summary)
    session.set_loop_count(args.loop)
    summary.reset()
    session.reset_summaryinfo()
    console.info(f"warm up {args.warmup_count} done")

    start_time = time.time()
    kept = []  # run_mode "full" writes every output after the last run
    for i, infiles in enumerate(infileslist):
        outputs = run_inference(session, args, arrays_for(infiles), summary)
        if prefix is None:
            continue
        if args.run_mode == "full":
            kept.append((i, infiles, outputs))
        else:
            save_outputs(outputs, prefix, infiles, args.outfmt, i, args.output_batchsize_axis,
                         summary)
    for i, infiles, outputs in kept:
        save_outputs(outputs, prefix, infiles, args.outfmt, i, args.output_batchsize_axis, summary)
    end_time = time.time()
    print_progress(args.run_mode, len(infileslist), session)

    summary.add_args(sys.argv)
    times = session.summary().exec_time_list
    multi_threads = args.pipeline and args.threads > 1
    if multi_threads:
        summary.npu_compute_time_interval_list = times
    else:
        summary.npu_compute_time_list = [end - start for start, end in times]
    summary.report(args.batchsize, prefix, args.display_all_summary, multi_threads)
    session.free_resource()
    NewInferSession.finalize()
    return summary.infodict["throughput"], start_time, end_time


def print_progress(run_mode: str, count: int, session: NewInferSession) -> None:
    """tqdm's final line, with the deterministic (virtual) NPU time as the elapsed time."""
    times = session.summary().exec_time_list
    seconds = (times[-1][1] - times[0][0]) / 1000 if times else 0.0
    rate = count / seconds if seconds else 0.0
    elapsed = f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"
    console.raw(f"{PROGRESS_LABELS[run_mode]}: 100%|\u2588\u2588\u2588\u2588\u2588\u2588\u2588"
                f"\u2588\u2588\u2588| {count}/{count} [{elapsed}<00:00, {rate:.2f}it/s]")


def divide_inputs(args: argparse.Namespace, jobs: int) -> list[str]:
    """--divide_input: each model input's files split into `jobs` consecutive shares."""
    paths = args.input.split(",")
    files = paths if os.path.isfile(paths[0]) else [f for d in paths for f in files_in_dir(d)]
    inputs_count = len(NewInferSession(0, args.model).get_inputs())
    per_input = -(-len(files) // inputs_count)
    shares: list[list[str]] = [[] for _ in range(jobs)]
    for start in range(0, len(files), per_input):
        chunk = files[start:start + per_input]
        base, left = divmod(len(chunk), jobs)
        offset = 0
        for j in range(jobs):
            size = base + (1 if j < left else 0)
            shares[j].extend(chunk[offset:offset + size])
            offset += size
    return [",".join(share) for share in shares]


def multidevice_run(args: argparse.Namespace) -> int:
    console.info(f"multidevice:{args.device} run begin")
    devices: list[int] = args.device
    timestr = time.strftime("%Y_%m_%d-%H_%M_%S")
    splits = divide_inputs(args, len(devices)) if args.input and args.divide_input else None
    results = []
    for i, device in enumerate(devices):
        cur = copy.deepcopy(args)
        cur.device = device
        if splits is not None:
            cur.input = splits[i] or None
        console.info(f"subprocess_{i} main run")
        try:
            results.append((i, *run_on_device(cur, i, devices, timestr)))
        except Exception as exc:  # noqa: BLE001 - the real pool's error_callback logs and goes on
            console.error(f"subprocess run failed error_callback:{exc}")
    result = 0 if len(results) == len(devices) else 1
    console.info(f"multidevice run end qsize:{2 * len(results)} result:{result}")
    for i, throughput, start, end in results:
        console.raw(f"i:{i} device_{devices[i]} throughput:{throughput} "
                    f"start_time:{start} end_time:{end}")
    console.info(f"summary throughput:{sum(r[1] for r in results)}")
    return result

