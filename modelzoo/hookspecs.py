"""The hooks a modelzoo plugin can implement (pluggy project name "modelzoo").

There are two, both registration hooks called once at start-up: a plugin hands the runner objects,
and the runner calls their methods. Built-in backends are registered through the same hooks as
external plugins (see modelzoo.plugins.BUILTIN_PLUGINS).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:
    from modelzoo.backends.base import Backend
    from modelzoo.core import ModelEntry

hookspec = pluggy.HookspecMarker("modelzoo")
hookimpl = pluggy.HookimplMarker("modelzoo")


@hookspec
def modelzoo_register_models(register: Callable[[ModelEntry], None]) -> None:
    """Register one or more models.

    Call ``register(ModelEntry(manifest=..., build=..., preprocess=..., demo_data=...))`` once per
    model. The entry's name is the manifest's ``name``; registering a name twice is an error.

    :param register: stores a :class:`modelzoo.registry.ModelEntry`.
    """


@hookspec
def modelzoo_register_backends(register: Callable[[Backend], None]) -> None:
    """Register one or more inference backends.

    Call ``register(backend)`` with an instance of a :class:`modelzoo.backends.base.Backend`
    subclass. ``backend.name`` is what ``--backend`` selects; ``auto`` picks the available backend
    with the highest ``priority``.

    :param register: stores a backend.
    """
