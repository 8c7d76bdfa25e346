"""ATC's error codes and the error block it prints when a conversion fails.

Message texts follow CANN's error catalogue (metadef error_manager/error_code.json), typos included
("requied"); the block layout follows real ATC output.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

FAILED_LINE = "ATC run failed, Please check the detail log, Try 'atc --help' for more information"

# code -> (message template, possible cause, solution); "N/A" causes are not printed, as in ATC.
CATALOGUE: dict[str, tuple[str, str, str]] = {
    "E10001": (
        "Value [{value}] for parameter [{parameter}] is invalid. Reason: {reason}",
        "N/A",
        "Try again with a valid argument.",
    ),
    "E10002": (
        "Value [{value}] for parameter [--input_shape] is invalid. Reason: {reason} "
        "The value must be formatted as [input_name1:n1,c1,h1,w1;input_name2:n2,c2,h2,w2].",
        "N/A",
        "The valid format is [input_name1:n1,c1,h1,w1;input_name2:n2,c2,h2,w2]. Replace "
        "[input_name#] with node names. Ensure that the shape values are integers.",
    ),
    "E10010": (
        "Value [{value}] for parameter [--log] is invalid.",
        "N/A",
        "Select the value from [debug], [info], [warning], [error], and [null].",
    ),
    "E10016": (
        "Opname [{opname}] specified in [--{parameter}] is not found in the model, confirm whether "
        "this node name exists, or node is not split with the specified delimiter ';'",
        "N/A",
        "Specify the name of an existing node in the graph.",
    ),
    "E10031": (
        "[--dynamic_batch_size] is included, but none of the nodes specified in [--input_shape] "
        "have a batch size equaling -1.",
        "As [--dynamic_batch_size] is included, ensure that at least one of the nodes specified "
        "in [--input_shape] has a batch size equaling -1.",
        "1. In static shape scenarios, remove the [--dynamic_batch_size] option from your command "
        "line. 2. In dynamic shape scenarios, set the corresponding axis of the dynamic-shape "
        "input in [--input_shape] to -1.",
    ),
    "E10035": (
        "[--dynamic_batch_size], [--dynamic_image_size], or [--dynamic_dims] has [{count}] "
        "profiles, which is less than the minimum ([{minimum}]).",
        "N/A",
        "Ensure that the number of profiles configured in [--dynamic_batch_size], "
        "[--dynamic_image_size], or [--dynamic_dims] is at least the minimum.",
    ),
    "E10040": (
        "As the [--dynamic_batch_size], [--dynamic_image_size], or [--dynamic_dims] argument is "
        "included, the corresponding nodes specified in [--input_shape] must have -1 axes and can "
        "not have '~'.",
        "N/A",
        "1. In static shape scenarios, remove the [--dynamic_batch_size], [--dynamic_image_size] "
        "or [--dynamic_dims] option from your command line.",
    ),
    "E10041": (
        "Failed to load the model from [{path}].",
        "N/A",
        "1. Check that the model file is valid. 2. Check that the weight file or path is valid "
        "when model is more than 2G. 3. Check that the [--framework] argument matches the actual "
        "framework of the model file.",
    ),
    "E10054": (
        'The requied parameter [{parameter}] for ATC is empty. Another possible reason is that '
        'the value of some parameters is not enclosed by quotation marks ("").',
        "N/A",
        "Check whether the command line parameter format is correct.",
    ),
    "E10410": (
        "File [{path}] does not exist.",
        "The file specified by the [--keep_dtype] or [--compress_weight_conf] argument does not "
        "exist.",
        "Try again with a valid file directory.",
    ),
    "E19010": (
        "No parser is registered for Op [{opname}, optype [{optype}]].",
        "N/A",
        "Check the version of the installation package and reinstall the package. For details, "
        "see the operator specifications.",
    ),
    "EZ3003": (
        "No supported Ops kernel and engine are found for [{opname}], optype [{optype}].",
        "The operator is not supported by the system. Therefore, no hit is found in any "
        "operator information library.",
        "1. Check that the OPP component is installed properly. 2. Submit an issue to request "
        "for the support of this operator type.",
    ),
    "E19999": ("Internal Error!", "N/A", "N/A"),
}


@dataclass(eq=False)  # exceptions compare by identity
class AtcError(Exception):
    """A conversion failure: an E-code and the arguments of its message template."""

    code: str
    args_: dict[str, str]
    traceback: str = "ATC model parse ret fail.[FUNC:ParseGraph][FILE:omg.cc][LINE:788]"

    def block(self, with_pid_prefix: bool = False) -> str:
        template, cause, solution = CATALOGUE.get(
            self.code, ("Forced failure of the fake atc.", "N/A", "N/A")
        )
        message = template.format_map(_Placeholders(self.args_))
        # Newer CANN prefixes the message with the pid and a timestamp.
        prefix = f"[PID: {os.getpid()}] {_timestamp()} " if with_pid_prefix else ""
        lines = [f"{self.code}: {prefix}{message}"]
        if cause != "N/A":
            lines.append(f"        Possible Cause: {cause}")
        if solution != "N/A":
            lines.append(f"        Solution: {solution}")
        lines.append("        TraceBack (most recent call last):")
        lines.append(f"        {self.traceback}")
        return "\n".join(lines)


def invalid_value(value: str, parameter: str, reason: str) -> AtcError:
    return AtcError("E10001", {"value": value, "parameter": parameter, "reason": reason},
                    f"[Check][Param]{parameter} check failed.[FUNC:CheckFlags][FILE:main_impl.cc]")


class _Placeholders(dict):
    """Leaves a missing template argument visible instead of failing the error report."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _timestamp() -> str:
    now = time.time()
    micros = int(now * 1_000_000) % 1_000_000
    return time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(now)) + (
        f".{micros // 1000:03d}.{micros % 1000:03d}"
    )
