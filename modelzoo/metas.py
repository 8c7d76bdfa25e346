"""A sample's metadata: what its preprocess knew that its postprocess needs (a letterbox's scale and
padding, an original size, a true length).

`preprocess(source)` may return `(inputs, meta)`, `meta` a JSON-serialisable dict. The meta never
goes to a backend: the driver keeps it by sample key while the sample's arrays are inferred (in
this process, in worker processes, on Ray actors or through ais_bench's files), stores it in
results.jsonl beside the sample's record, and hands a batch's metas to a task whose
`postprocess(outputs, metas)` takes them.
"""
from __future__ import annotations

import inspect
import json
from typing import Any, Callable

from modelzoo.errors import PluginError

Meta = dict[str, Any]


def split(preprocessed: Any) -> tuple[Any, Meta | None]:
    """(inputs, meta) from what a preprocess returned: a pair whose second half is a dict, or bare inputs."""
    if isinstance(preprocessed, tuple) and len(preprocessed) == 2 and isinstance(preprocessed[1], dict):
        return preprocessed
    return preprocessed, None


def problem(meta: Any) -> str | None:
    """What keeps `meta` from being stored as JSON (the first offending value and where), or None."""
    if not isinstance(meta, dict):
        return f"meta is a {type(meta).__name__}, not a dict"
    return _first_bad(meta, "meta")


def _first_bad(value: Any, where: str) -> str | None:
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{where} has the key {key!r} ({type(key).__name__}), not a string"
            found = _first_bad(item, f"{where}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        return next((f for i, item in enumerate(value) if (f := _first_bad(item, f"{where}[{i}]"))), None)
    if value is None or isinstance(value, (str, bool, int, float)):
        try:
            json.dumps(value, allow_nan=False)
        except ValueError:
            return f"{where} is {value!r}, which JSON cannot hold"
        return None
    return f"{where} is {_short(value)} ({type(value).__name__}), not JSON: use plain numbers, strings and lists"


def _short(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def check(meta: Any, key: str, plugin: str) -> None:
    """A PluginError naming the sample and the offending value when `meta` cannot be stored."""
    found = problem(meta)
    if found:
        raise PluginError(f"plugin '{plugin}' preprocess of sample {key} returned {found}")


def takes_metas(postprocess: Callable) -> bool:
    """Whether a task's postprocess accepts a second argument, the batch's metas."""
    try:
        parameters = list(inspect.signature(postprocess).parameters.values())
    except (TypeError, ValueError):  # a builtin without a signature: the one-argument contract
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in parameters)


def postprocessor(task: Any) -> Callable[[dict, list[Meta | None]], list]:
    """`task.postprocess` as a call of (outputs, metas), its signature inspected once here."""
    postprocess = task.postprocess
    if takes_metas(postprocess):
        return postprocess
    return lambda outputs, metas: postprocess(outputs)
