"""`modelzoo run --engine ray`: the batches of a run spread over session actors on a Ray cluster.

The driver cuts the images still to do into batches and keeps every actor two batches deep; results
come back in whatever order the actors finish, and the driver alone records them. An actor or node
that dies loses only its batches in flight: they go back to the front of the queue and run on
another actor, and a result for an image already recorded is dropped, so nothing is lost and
nothing counted twice. A dead actor whose node is still alive is replaced (a few times at most).
"""
from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from modelzoo.core import Sample
from modelzoo.engines.cluster import Cluster, Node
from modelzoo.engines.ray_actor import SessionHost, ShippedFile
from modelzoo.engines.shipping import pack
from modelzoo.errors import UserError
from modelzoo.resume import FILE_NAME
from modelzoo.stream import Padding, bucket_window

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts
    from modelzoo.backends.base import Backend, BackendSettings
    from modelzoo.core import ModelEntry

log = logging.getLogger(__name__)

DEPTH = 2          # batches in flight per actor: one decoding while one runs
MAX_RESTARTS = 2   # replacements of a dead actor on a node that is still alive
MAX_TRIES = 3      # actors a batch may take down before the run stops
RELEASE_TIMEOUT = 60  # seconds the sessions get to close at the end of a run


@dataclass
class Slot:
    """A place for one session: a node and the Ray resources one actor takes there."""

    node: Node
    options: dict[str, Any]
    restarts: int = 0


@dataclass
class Work:
    samples: list[Sample]
    tries: int = 0


@dataclass
class Actor:
    handle: Any
    slot: Slot
    in_flight: int = 0
    lost: bool = False
    figures: dict[str, Any] = field(default_factory=dict)


def plan(nodes: list[Node], backend: Backend, actors_per_node: int | None) -> list[Slot]:
    """One slot per accelerator device for an accelerator backend; for a CPU backend one per node
    (or `actors_per_node`), each taking an equal share of the node's CPUs."""
    slots = []
    for node in nodes:
        cpus = node.resources.get("CPU", 0.0)
        if backend.accelerator:
            count = int(node.resources.get(backend.accelerator, 0))
            extra = {"resources": {backend.accelerator: 1}}
        else:
            count = (actors_per_node or 1) if cpus > 0 else 0
            extra = {}
        for _ in range(count):
            slots.append(Slot(node, {"num_cpus": cpus / count, **extra}))
    return slots


class ClusterInference:
    """The session actors of one run: started when made (the artifacts prepared and shipped first),
    fed by `stream()`, killed by `close()`."""

    def __init__(self, cluster: Cluster, entry: ModelEntry, backend: Backend, artifacts: Artifacts,
                 settings: BackendSettings, batch_size: int, actors_per_node: int | None, ship_data: bool):
        self.cluster = cluster
        self.ray = cluster.ray
        self.backend = backend
        self.batch_size = batch_size
        # A model with dynamic axes: an actor gets several batches' worth at once and sorts them by
        # size (stream.bucketed), so that its batches pad as little as a local run's.
        self.chunk = bucket_window(batch_size) if entry.manifest.axes else batch_size
        self.padding = Padding(entry.manifest) if entry.manifest.axes else None
        self.ship_data = ship_data
        self.results_path = Path(settings.workdir) / FILE_NAME
        backend.prepare(artifacts, batch_size, settings)
        weights = artifacts.weights
        weights_ref = None if weights.random else self.ray.put(weights.path.read_bytes())
        self.shipment = pack(artifacts, weights_ref)
        self.shipment_ref = self.ray.put(self.shipment)
        host = self.ray.remote(max_concurrency=DEPTH)(SessionHost)
        self._start = lambda slot: host.options(
            scheduling_strategy=self._on(slot.node), max_restarts=0, **slot.options).remote(
            entry, backend, self.shipment_ref, settings, batch_size)
        slots = plan(cluster.nodes(), backend, actors_per_node)
        if not slots:
            raise UserError(f"no node of the Ray cluster offers {backend.accelerator or 'CPU'} for backend "
                            f"'{backend.name}'; add such nodes (ray start --address ...) or pick another --backend")
        self.opening: dict[Any, Actor] = {}  # ObjectRef of `open` -> the actor it opens
        self.live: list[Actor] = []
        self.seen: list[Actor] = []  # every actor started, lost ones too: their figures count
        # An accelerator's first session opens alone: what it builds for its chip (an .om) is
        # shipped to the others, and a node whose chip differs builds its own under another key.
        self.waiting = slots[1:] if backend.accelerator else []
        for slot in slots[:len(slots) - len(self.waiting)]:
            self._launch(slot)
        self.precision: tuple[str, str] | None = None  # what the first session runs, and how that is known
        self.kept_ops: list[str] | None = None  # ops its precision fix keeps at higher precision
        self.lost_actors = 0
        self.rerun_batches = 0
        self.started = time.perf_counter()
        self.wall = 0.0

    def _on(self, node: Node):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return NodeAffinitySchedulingStrategy(node.node_id, soft=False)

    def _launch(self, slot: Slot) -> None:
        actor = Actor(self._start(slot), slot)
        self.seen.append(actor)
        self.opening[actor.handle.open.remote()] = actor

    def stream(self, todo: list[Sample], skip_invalid: bool, on_skip: Callable[[dict[str, str]], None],
               metas: dict[str, Any]) -> Iterator[tuple[list[str], dict[str, np.ndarray]]]:
        """(keys, outputs) of every batch, in the order they finish; the metas that came back with
        them go into `metas` by key first (see modelzoo.metas)."""
        queue = collections.deque(Work(todo[i:i + self.chunk]) for i in range(0, len(todo), self.chunk))
        running: dict[Any, tuple[Actor, Work]] = {}
        done: set[str] = set()
        self.started = time.perf_counter()
        while queue or running:
            for actor in self.live:
                while queue and actor.in_flight < DEPTH:
                    work = queue.popleft()
                    running[actor.handle.infer.remote(self._sources(work))] = (actor, work)
                    actor.in_flight += 1
            if not running and not self.opening:
                raise UserError(f"no node of the Ray cluster can run backend '{self.backend.name}' any more "
                                f"({sum(len(w.samples) for w in queue)} samples left); results so far are safe in "
                                f"{self.results_path}: rerun the same command to resume once nodes are back")
            ready, _ = self.ray.wait([*running, *self.opening], num_returns=1)
            ref = ready[0]
            if ref in self.opening:
                self._opened(ref)
                continue
            actor, work = running.pop(ref)
            actor.in_flight -= 1
            try:
                reply = self.ray.get(ref)
            except self.ray.exceptions.RayTaskError as exc:
                raise _cause(exc) from None
            except self._lost_errors() as exc:
                self._lost(actor, exc)
                work.tries += 1
                if work.tries >= MAX_TRIES:
                    raise UserError(f"a batch starting at sample {work.samples[0].key} took down {work.tries} actors; "
                                    f"results so far are safe in {self.results_path}") from None
                queue.appendleft(work)
                self.rerun_batches += 1
                continue
            if reply["images"] >= actor.figures.get("images", 0):  # replies may arrive out of order
                actor.figures = {k: reply[k] for k in ("images", "throughput_fps")}
            sources = {s.key: s.source for s in work.samples}
            for record in reply["skipped"]:
                if not skip_invalid:
                    raise UserError(record["reason"])
                on_skip({**record, "source": str(sources[record["key"]])})  # not the node's copy
            if self.padding is not None:
                self.padding.merge(reply["padding"])
            for keys, outputs, batch_metas in reply["batches"]:
                fresh = [i for i, key in enumerate(keys) if key not in done]
                if fresh:
                    done.update(keys[i] for i in fresh)
                    metas.update((keys[i], batch_metas[i]) for i in fresh if batch_metas[i] is not None)
                    yield [keys[i] for i in fresh], {name: array[fresh] for name, array in outputs.items()}
        self.wall = time.perf_counter() - self.started
        self._release()

    def _release(self) -> None:
        """Let every session close itself (a device released as the backend releases it) before
        `close()` ends the actors; a session that cannot is ended all the same."""
        try:
            self.ray.get([actor.handle.close.remote() for actor in self.live], timeout=RELEASE_TIMEOUT)
        except self.ray.exceptions.RayError as exc:  # a lost actor, or the timeout
            log.warning("a session did not close cleanly (%s); its actor is ended", type(exc).__name__)

    def _sources(self, work: Work) -> list[tuple[str, Any]]:
        """(key, source) per sample: a file's path as every node sees it, or (--ship-data) its bytes."""
        items = []
        for sample in work.samples:
            source = sample.source
            if isinstance(source, Path):
                source = ShippedFile(source.name, source.read_bytes()) if self.ship_data else source.resolve()
            items.append((sample.key, source))
        return items

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        e = self.ray.exceptions
        return (e.RayActorError, e.WorkerCrashedError, e.ObjectLostError, e.NodeDiedError)

    def _opened(self, ref: Any) -> None:
        actor = self.opening.pop(ref)
        try:
            where = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:
            raise _cause(exc) from None  # the backend cannot open here: as in a local run
        except self._lost_errors() as exc:
            self._lost(actor, exc)
            self._launch_waiting()  # without what it would have built
            return
        if self.precision is None:
            self.precision = (where["precision"], where["precision_note"])
            self.kept_ops = where["kept_ops"]
        self.live.append(actor)
        log.info("session actor ready on node %s (pid %d)", actor.slot.node.label, where["pid"])
        if where["built"]:
            log.info("shipping what node %s built to the other nodes: %s", actor.slot.node.label,
                     ", ".join(sorted(where["built"])))
            self.shipment = replace(self.shipment, files={**self.shipment.files, **where["built"]})
            self.shipment_ref = self.ray.put(self.shipment)
        self._launch_waiting()

    def _launch_waiting(self) -> None:
        for slot in self.waiting:
            self._launch(slot)
        self.waiting = []

    def _lost(self, actor: Actor, exc: BaseException) -> None:
        """Forget a dead actor; start another in its place while its node lives."""
        if actor.lost:  # its other batches in flight fail after the first
            return
        log.warning("session actor on node %s is lost (%s); its batches run again elsewhere",
                    actor.slot.node.label, type(exc).__name__)
        actor.lost = True
        self.lost_actors += 1
        if actor in self.live:
            self.live.remove(actor)
        self.ray.kill(actor.handle)  # an unreachable actor must not come back
        if actor.slot.restarts < MAX_RESTARTS and self.cluster.alive(actor.slot.node.node_id):
            actor.slot.restarts += 1
            self._launch(actor.slot)

    def throughput_fps(self) -> float | None:
        """The cluster's pure inference rate: the sum of its sessions' rates."""
        rates = [a.figures["throughput_fps"] for a in self._measured() if a.figures.get("throughput_fps")]
        return sum(rates) if rates else None

    def _measured(self) -> list[Actor]:
        return [a for a in self.seen if a.figures]

    def report(self) -> dict[str, Any]:
        """Per-node and cluster figures for report.json."""
        nodes: dict[str, dict[str, Any]] = {}
        for actor in self._measured():
            node = nodes.setdefault(actor.slot.node.node_id, {"node": actor.slot.node.label, "ip": actor.slot.node.ip,
                                                              "actors": 0, "images": 0, "throughput_fps": 0.0})
            node["actors"] += 1
            node["images"] += actor.figures["images"]
            node["throughput_fps"] += actor.figures["throughput_fps"] or 0.0
        for node in nodes.values():
            node["e2e_fps"] = node["images"] / self.wall if self.wall else None
        images = sum(n["images"] for n in nodes.values())
        return {"engine": "ray", "nodes": sorted(nodes.values(), key=lambda n: n["node"]),
                "actors": sum(n["actors"] for n in nodes.values()), "throughput_fps": self.throughput_fps(),
                "e2e_fps": images / self.wall if self.wall else None,
                "lost_actors": self.lost_actors, "rerun_batches": self.rerun_batches}

    def close(self) -> None:
        """Stop every actor (Ctrl-C, an error, or the end of the run)."""
        for actor in [*self.live, *self.opening.values()]:
            self.ray.kill(actor.handle)
        self.live.clear()
        self.opening.clear()


def _cause(exc: BaseException) -> BaseException:
    """The exception an actor raised, as a local run would have raised it."""
    cause = getattr(exc, "cause", None)
    return cause if isinstance(cause, BaseException) else exc
