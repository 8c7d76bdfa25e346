"""The one error type a user can cause: it ends the command with one line and exit code 2."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator


class UserError(Exception):
    """Bad input, a missing file or tool, a failed external step: anything the user can fix.

    The message is a single line saying what went wrong, which file, and what to do.
    """

    exit_code = 2


class Interrupted(UserError):
    """Ctrl-C: the run stopped at a batch boundary; the message says how to resume."""

    exit_code = 130


class PluginError(Exception):
    """A plugin failed to load or raised in a hook. The message names the plugin and the hook; the
    CLI prints it as one line that points to --debug, which shows the plugin's traceback.
    `plugin`: the plugin's name, where a plugin that fails at start-up is left out (see
    modelzoo.plugins) and named in a warning instead."""

    exit_code = 2

    def __init__(self, message: str, plugin: str | None = None):
        super().__init__(message)
        self.plugin = plugin


@contextmanager
def plugin_code(plugin: str, what: str) -> Iterator[None]:
    """Run a plugin's code: anything it raises besides a UserError becomes a PluginError naming it."""
    try:
        yield
    except (UserError, PluginError):
        raise
    except Exception as exc:
        raise PluginError(f"plugin '{plugin}' raised {type(exc).__name__} in {what}: {exc}") from exc
