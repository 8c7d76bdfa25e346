"""Each backend's own command-line flags: a group per backend on `run` and `bench`, read back into
that backend's options after parsing. The core names none of them (see Backend.add_options)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from modelzoo.backends.base import Backend

log = logging.getLogger(__name__)


def add_backend_flags(parser: argparse.ArgumentParser, backends: Iterable[Backend], command: str) -> None:
    """A group "<name> backend options" per backend, with the flags it adds for `command`."""
    owned: dict[str, tuple[Backend, list[argparse.Action]]] = {}
    for backend in backends:
        group = parser.add_argument_group(f"{backend.name} backend options")
        try:
            backend.add_options(group, command)
        except argparse.ArgumentError as exc:
            # The parser is not built yet, so logging is not set up: one line, and the rest works.
            print(f"modelzoo: warning: backend '{backend.name}' adds an option that is taken "
                  f"({exc}); its other flags are kept", file=sys.stderr)
        # argparse keeps a group's actions only privately; they tell which flags are this backend's.
        owned[backend.name] = (backend, list(group._group_actions))
    parser.set_defaults(backend_flags=owned)


def backend_options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """Per backend name: its options from the parsed flags, and those of its flags given a value
    other than their default (to warn when another backend runs)."""
    options: dict[str, Any] = {}
    given: dict[str, list[str]] = {}
    for name, (backend, actions) in args.backend_flags.items():
        options[name] = backend.options_from(args)
        given[name] = [a.option_strings[0] for a in actions
                       if a.option_strings and getattr(args, a.dest, a.default) != a.default]
    return options, given


def warn_ignored(given: dict[str, list[str]], running: Iterable[str]) -> None:
    """One warning line per backend whose flags were given although it does not run."""
    running = set(running)
    for name, flags in given.items():
        if flags and name not in running:
            log.warning("%s: option%s of the %s backend, which does not run here (%s); ignored",
                        " ".join(flags), "s" if len(flags) > 1 else "", name, ", ".join(sorted(running)))
