"""The performance summary: console lines and the `<output_prefix>_summary.json` file."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from ais_bench import console
from ais_bench.infer.path_check import open_checked

SCALE = 99  # the percentile ais_bench reports


@dataclass
class ListInfo:
    min: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    median: float = 0.0
    percentile: float = 0.0

    @classmethod
    def of(cls, values: list[float]) -> ListInfo:
        if not values:
            return cls()
        return cls(np.min(values), np.max(values), np.mean(values), np.median(values),
                   np.percentile(values, SCALE))

    @classmethod
    def of_intervals(cls, intervals: list[tuple[float, float]]) -> ListInfo:
        """Multi-thread mode: mean = time covered by the merged intervals / count."""
        merged: list[list[float]] = []
        for start, end in sorted(intervals):
            if merged and merged[-1][1] >= start:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        covered = sum(end - start for start, end in merged)
        return cls(mean=covered / len(intervals)) if intervals else cls()

    def as_dict(self, count: int) -> dict[str, float]:
        return {"min": self.min, "max": self.max, "mean": self.mean, "median": self.median,
                f"percentile({SCALE}%)": self.percentile, "count": count}


class Summary:
    def __init__(self) -> None:
        self.infodict: dict = {"filesinfo": {}}
        self.reset()

    def reset(self) -> None:
        self.npu_compute_time_list: list[float] = []
        self.npu_compute_time_interval_list: list[tuple[float, float]] = []
        self.h2d_latency_list: list[float] = []
        self.d2h_latency_list: list[float] = []
        self.batchsizes: list[int] = []

    def add_sample_id_infiles(self, sample_id: int, infiles: list[str]) -> None:
        entry = self.infodict["filesinfo"].setdefault(sample_id, {"infiles": [], "outfiles": []})
        if not entry["infiles"]:
            entry["infiles"].extend(infiles)

    def append_sample_id_outfile(self, sample_id: int, outfile: str) -> None:
        entry = self.infodict["filesinfo"].setdefault(sample_id, {"infiles": [], "outfiles": []})
        entry["outfiles"].append(outfile)

    def add_args(self, argv: list[str]) -> None:
        self.infodict["args"] = argv

    def report(self, batchsize: float, output_prefix: str | None,
               display_all_summary: bool = False, multi_threads: bool = False) -> None:
        if multi_threads:
            npu = ListInfo.of_intervals(self.npu_compute_time_interval_list)
            npu_count = len(self.npu_compute_time_interval_list)
        else:
            npu = ListInfo.of(self.npu_compute_time_list)
            npu_count = len(self.npu_compute_time_list)
        h2d = ListInfo.of(self.h2d_latency_list)
        d2h = ListInfo.of(self.d2h_latency_list)
        if self.batchsizes:
            batchsize = sum(self.batchsizes) / len(self.batchsizes)
        throughput = 0 if npu.mean == 0 else 1000 * batchsize / npu.mean

        if multi_threads:
            self.infodict["NPU_compute_time"] = {"mean": npu.mean, "count": npu_count}
            self.infodict["H2D_latency"] = {"mean": h2d.mean, "count": len(self.h2d_latency_list)}
            self.infodict["D2H_latency"] = {"mean": d2h.mean, "count": len(self.d2h_latency_list)}
            self.infodict["npu_compute_time_list"] = self.npu_compute_time_interval_list
        else:
            self.infodict["NPU_compute_time"] = npu.as_dict(npu_count)
            self.infodict["H2D_latency"] = h2d.as_dict(len(self.h2d_latency_list))
            self.infodict["D2H_latency"] = d2h.as_dict(len(self.d2h_latency_list))
            self.infodict["npu_compute_time_list"] = self.npu_compute_time_list
        self.infodict["throughput"] = throughput
        self.infodict["pid"] = os.getpid()

        console.info("-----------------Performance Summary------------------")
        lines = [("H2D_latency", h2d), ("NPU_compute_time", npu), ("D2H_latency", d2h)]
        for name, info in lines:
            if name != "NPU_compute_time" and not display_all_summary:
                continue
            if multi_threads:
                console.info(f"{name} (ms): mean = {info.mean}")
            else:
                console.info(f"{name} (ms): min = {info.min}, max = {info.max}, "
                             f"mean = {info.mean}, median = {info.median}, "
                             f"percentile({SCALE}%) = {info.percentile}")
        console.info(f"throughput 1000*batchsize.mean({batchsize})/"
                     f"NPU_compute_time.mean({npu.mean}): {throughput}")
        console.info("------------------------------------------------------")

        if output_prefix is not None:
            with open_checked(output_prefix + "_summary.json", "wb") as f:
                f.write(json.dumps(self.infodict).encode())
