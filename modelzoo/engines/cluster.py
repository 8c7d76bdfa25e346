"""The driver's connection to a Ray cluster, and what the cluster's nodes offer."""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

from modelzoo.errors import UserError

if TYPE_CHECKING:
    from modelzoo.backends.base import Backend
    from modelzoo.registry import Registry

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'modelzoo-lvvit[ray]' (in a checkout: pip install -e \".[ray]\")"

# How long an explicit address may take to accept a connection. Ray's own connect retries an address
# where nothing listens for many minutes (20 tries of about 40 s in Ray 2.60), and its timeouts
# (RAY_py_gcs_connect_timeout_s, RAY_gcs_rpc_server_connect_timeout_s) are read once, when Ray is
# imported, so they cannot be shortened for one connection here: a plain TCP connect comes first.
CONNECT_TIMEOUT_S = 10.0


def import_ray() -> ModuleType:
    try:
        import ray
    except ImportError:
        raise UserError(f"--engine ray needs Ray, which is not installed here; {INSTALL_HINT}") from None
    return ray


def check_reachable(address: str | None) -> None:
    """Raise ConnectionError unless something at an explicit `address` ("host:port" or
    "ray://host:port") accepts a TCP connection within CONNECT_TIMEOUT_S. Ray's own resolution
    (None, "auto", "local") and addresses it would reject are left to `ray.init`."""
    if address is None or address in ("auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not (port.isascii() and port.isdigit()):
        return  # not host:port: ray.init says what is wrong with it
    if not 0 < int(port) < 65536:
        raise ValueError(f"port {port} is not between 1 and 65535")  # Ray would wait on it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except socket.timeout:
        raise ConnectionError(f"no answer within {CONNECT_TIMEOUT_S:g} s") from None
    except OSError as exc:
        raise ConnectionError(exc.strerror or str(exc)) from None


def _connect_hint() -> str:
    """What to check when something answers at the address but Ray does not let us in."""
    if os.environ.get("RAY_AUTH_MODE") == "token":
        return "check --address, and that RAY_AUTH_TOKEN (or ~/.ray/auth_token) holds the cluster's token"
    # `ray start` turns token authentication on by default since Ray 2.59; a driver without the
    # token is refused with nothing in the exception but "Failed to connect".
    return ("check --address; a cluster started by `ray start` (Ray 2.59 or later) wants token "
            "authentication: set RAY_AUTH_MODE=token, with the token from `ray get-auth-token` in "
            "RAY_AUTH_TOKEN or ~/.ray/auth_token")


@dataclass(frozen=True)
class Node:
    node_id: str
    ip: str
    resources: dict[str, float]

    @property
    def label(self) -> str:
        return f"{self.ip}/{self.node_id[:8]}"


class Cluster:
    """A connection to a Ray cluster: `address` as `ray.init` takes it (None: RAY_ADDRESS, else the
    cluster running on this host, else a local one started for this run).

    A connection this process already holds (a library caller's, a test's) is used as it is and
    left open; one made here is closed by `close()` (`connect()` closes it when its block ends).
    """

    def __init__(self, address: str | None):
        self.ray = import_ray()
        self.owned = not self.ray.is_initialized()
        if self.owned:
            log.info("connecting to Ray%s", f" at {address}" if address else "")
            from_env = os.environ.get("RAY_ADDRESS")
            where = address or (f"{from_env} (RAY_ADDRESS)" if from_env else "this host")
            try:
                check_reachable(address or from_env)
            except (ConnectionError, ValueError) as exc:
                raise UserError(f"cannot connect to the Ray cluster at {where}: {exc}; start one with "
                                "'ray start --head' or check --address") from None
            try:
                # Actor output is not forwarded: failures reach the driver as exceptions.
                self.ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise UserError(f"cannot connect to the Ray cluster at {where}: "
                                f"{str(exc).strip().splitlines()[0]}; {_connect_hint()}") from None

    def nodes(self) -> list[Node]:
        """The nodes alive now."""
        return [Node(n["NodeID"], n["NodeManagerAddress"], dict(n["Resources"]))
                for n in self.ray.nodes() if n["Alive"]]

    def alive(self, node_id: str) -> bool:
        return any(node.node_id == node_id for node in self.nodes())

    def choose_backend(self, registry: Registry, name: str, precision: str) -> Backend:
        """The backend for a cluster run. `auto`: the highest-priority backend whose accelerator the
        cluster has (e.g. ascend on NPU nodes), else what `auto` picks on this host. A named backend
        is not checked on this host: the nodes that run it check it when they open it."""
        if name != "auto":
            backend = registry.backends.get(name)
            if backend is None or backend.accelerator is None:
                return registry.backend(name, precision)  # same checks as a local run
            if backend.precision_problem(precision):
                return registry.backend(name, precision)  # raises the precision's one line
            return backend
        present = {key for node in self.nodes() for key, value in node.resources.items() if value > 0}
        accelerated = [b for b in registry.backends.values()
                       if b.accelerator in present and b.precision_problem(precision) is None]
        if accelerated:
            return max(accelerated, key=lambda b: b.priority)
        return registry.backend("auto", precision)

    def close(self) -> None:
        if self.owned and self.ray.is_initialized():
            self.ray.shutdown()


@contextmanager
def connect(engine: str, address: str | None) -> Iterator[Cluster | None]:
    """The cluster for `--engine ray` (None for the local engine) while the block runs, closed
    however the block ends, so that a cluster a run started does not outlive it after an error."""
    if engine == "local":
        yield None
        return
    if engine != "ray":
        raise UserError(f"--engine {engine!r} is not one of local, ray")
    cluster = Cluster(address)
    try:
        yield cluster
    finally:
        cluster.close()
