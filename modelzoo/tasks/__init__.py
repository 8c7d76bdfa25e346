"""Tasks: what a model's outputs mean. A task reads a dataset into samples with targets, turns a
batch of raw outputs into one record per sample, and scores records against targets.

The runner ships reusable tasks that a manifest selects by `[task] kind`; a plugin may bring its
own (`ModelEntry(task=...)`). The runner never looks inside a record: it stores records in the
resume log, hands them to the evaluator and writes the evaluator's metrics into the report.
"""
from __future__ import annotations

from typing import Callable

from modelzoo.core import Task
from modelzoo.errors import UserError
from modelzoo.manifest import Manifest
from modelzoo.tasks.base import samples_digest
from modelzoo.tasks.classification import Classification

# kind -> the task built from a manifest's [task] table
BUILTIN_TASKS: dict[str, Callable[[Manifest], Task]] = {
    "classification": Classification.from_manifest,
}


def builtin_task(manifest: Manifest) -> Task:
    kind = manifest.task["kind"]
    factory = BUILTIN_TASKS.get(kind)
    if factory is None:
        raise UserError(f"{manifest.path}: key 'task.kind' names no built-in task ({kind!r}; built-in: "
                        f"{', '.join(sorted(BUILTIN_TASKS))}); fix the manifest, or pass task= to ModelEntry")
    return factory(manifest)


__all__ = ["BUILTIN_TASKS", "Classification", "builtin_task", "samples_digest"]
