"""Everything a plugin uses, in one place: `from modelzoo.api import hookimpl, ModelEntry, ...`.

Model plugins need `hookimpl`, `ModelEntry`, `load_manifest` and, for a task of their own,
`Task`, `Dataset`, `Sample` and `Evaluator` (or a built-in task such as `Classification`);
backend plugins subclass `Backend` and `Session`. `UserError` is how plugin code reports bad
input in one line. Anything not listed here may change without notice.
"""
from __future__ import annotations

from modelzoo.backends.base import Backend, BackendSettings, Session
from modelzoo.core import Batch, Dataset, Evaluator, ModelEntry, Sample, Task
from modelzoo.errors import UserError
from modelzoo.hookspecs import hookimpl
from modelzoo.manifest import Manifest, OutputCheck, Tensor, load_manifest
from modelzoo.tasks import Classification

__all__ = ["Backend", "BackendSettings", "Batch", "Classification", "Dataset", "Evaluator", "Manifest",
           "ModelEntry", "OutputCheck", "Sample", "Session", "Task", "Tensor", "UserError", "hookimpl", "load_manifest"]
