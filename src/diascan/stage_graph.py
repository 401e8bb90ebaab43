"""Run named stages as a dependency graph: each stage starts as soon as the stages it needs are
done, in a small thread pool, and each stage's product is a :class:`concurrent.futures.Future`.

This is what lets :func:`diascan.pipeline.start_pipeline` detect sources on the difference image
while the template is warped, and what a progressive viewer attaches to (one future per
product, created before anything runs, so callbacks can be added at once).

Why by hand: ``dask.threaded.get`` runs task graphs, but importing dask costs ~0.3 s, the whole
import budget of ``diascan score``'s critical path, and returns only the final values;
``concurrent.futures`` is in the standard library and the scheduling here is ~80 lines.

Threads, not processes: the heavy stages spend their time in numpy, scipy and torch, which
release the GIL, and they share multi-hundred-MB images that processes would have to copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from diascan.errors import Cancelled
from diascan.progress import CancelToken


@dataclass(frozen=True)
class Stage:
    """One stage: ``fn(**{need: product of need})`` returns this stage's product."""

    name: str
    fn: Callable[..., Any]
    needs: tuple[str, ...] = ()


class StageGraph:
    """Stages in a valid order (every stage is added after the stages it needs).

    ``cancel_token`` follows the caller's ``cancel`` and is also cancelled when a stage fails:
    give it to the stages' functions so they stop mid-way.
    """

    def __init__(self, cancel: CancelToken | None = None) -> None:
        self.stages: dict[str, Stage] = {}
        self.cancel_token = CancelToken(parent=cancel)

    def add(self, name: str, fn: Callable[..., Any], needs: Iterable[str] = ()) -> None:
        needs = tuple(needs)
        unknown = [n for n in needs if n not in self.stages]
        if name in self.stages or unknown:
            raise ValueError(f"stage {name!r}: duplicate, or needs unknown stages {unknown}")
        self.stages[name] = Stage(name, fn, needs)

    def start(self, workers: int = 3) -> StageRun:
        """``StageRun(self).start(workers)``."""
        return StageRun(self).start(workers)


class StageRun:
    """A started :class:`StageGraph`: one future per stage, plus start/end times.

    A stage that raises fails its future with that exception; every stage that needs it
    (directly or not) fails with the same exception without running, and the run's token is
    cancelled so the stages still running stop at their next check. Their futures then hold
    that first failure too, not :class:`~diascan.errors.Cancelled`: whichever future a caller
    looks at first names the real problem (a load that reported "cancelled" for a file that
    cannot be read left the viewer waiting forever). Callbacks added with :meth:`on` run in
    the thread that finished the stage.
    """

    def __init__(self, graph: StageGraph) -> None:
        self.graph = graph
        #: Cancelled by :meth:`cancel`, by the caller's token, or by a failed stage.
        self.cancel_token = graph.cancel_token
        self.futures: dict[str, Future] = {name: Future() for name in graph.stages}
        #: ``name -> (start, end)`` in seconds of ``time.perf_counter()`` since the run started.
        self.times: dict[str, tuple[float, float]] = {}
        self.t0 = time.perf_counter()
        self._lock = threading.Lock()
        self._waiting = {name: len(s.needs) for name, s in graph.stages.items()}
        self._users: dict[str, list[str]] = {name: [] for name in graph.stages}
        for s in graph.stages.values():
            for need in s.needs:
                self._users[need].append(s.name)
        self._pool: ThreadPoolExecutor | None = None
        self._left = len(graph.stages)
        self._settled: set[str] = set()  # stages whose future is (being) set
        self._failure: BaseException | None = None  # the first stage error (not a Cancelled)

    def __getitem__(self, name: str) -> Future:
        return self.futures[name]

    def result(self, name: str, timeout: float | None = None) -> Any:
        """The product of stage ``name`` (waits; re-raises its exception)."""
        return self.futures[name].result(timeout)

    def on(self, name: str, callback: Callable[[Future], Any]) -> None:
        """Call ``callback(future)`` when stage ``name`` is done (at once if it is)."""
        self.futures[name].add_done_callback(callback)

    def cancel(self) -> None:
        """Ask the stages to stop; stages not yet started are not started."""
        self.cancel_token.cancel()

    # ---------------------------------------------------------------------------- running

    def start(self, workers: int = 3) -> StageRun:
        """Start every stage whose needs are met; the others follow as their needs finish.

        ``workers=0`` runs all stages here, one after the other in the order they were added,
        and returns when they are done (the sequential reference). The run's token is polled
        before each stage starts.
        """
        if workers <= 0:
            for name in self.graph.stages:
                if name not in self._settled:
                    self._run(name)
            return self
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="diascan-stage")
        ready = [name for name, n in self._waiting.items() if n == 0]
        for name in ready:
            self._pool.submit(self._run, name)
        return self

    def _run(self, name: str) -> None:
        stage = self.graph.stages[name]
        fut = self.futures[name]
        start = time.perf_counter() - self.t0
        try:
            self.cancel_token.check()
            value = stage.fn(**{n: self.futures[n].result() for n in stage.needs})
        except BaseException as exc:  # noqa: BLE001 - handed to the future, re-raised by result()
            self.times[name] = (start, time.perf_counter() - self.t0)
            self._fail(name, exc)
            return
        self.times[name] = (start, time.perf_counter() - self.t0)
        with self._lock:
            self._settled.add(name)
        fut.set_result(value)
        self._finished(name, ok=True)

    def _fail(self, name: str, exc: BaseException) -> None:
        """Fail ``name`` and everything that needs it with ``exc``, then stop the others."""
        todo = [name]
        failed = []
        with self._lock:  # two needs of one stage may fail at once in two threads
            if not isinstance(exc, Cancelled):
                self._failure = self._failure or exc
            elif self._failure is not None:  # stopped because another stage failed
                exc = self._failure
            while todo:
                n = todo.pop()
                if n in self._settled:
                    continue
                self._settled.add(n)
                failed.append(n)
                todo.extend(self._users[n])
        for n in failed:
            self.futures[n].set_exception(exc)
        if not isinstance(exc, Cancelled):
            self.cancel_token.cancel()
        for n in failed:
            self._finished(n, ok=False)

    def _finished(self, name: str, ok: bool) -> None:
        submit = []
        with self._lock:
            self._left -= 1
            last = self._left == 0
            if ok:
                for user in self._users[name]:
                    self._waiting[user] -= 1
                    if self._waiting[user] == 0 and user not in self._settled:
                        submit.append(user)
        if self._pool is not None:
            for user in submit:
                self._pool.submit(self._run, user)
            if last:
                self._pool.shutdown(wait=False)
