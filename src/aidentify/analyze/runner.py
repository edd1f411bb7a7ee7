"""Where recordings run: worker processes on this machine, or a Dask cluster, behind one interface.

Both give ``submit(job) -> future`` (anything with ``done()``, ``result()`` and ``exception()``),
``capacity`` (recordings at once) and ``died(exc)`` (whether a failure means the worker died, which
costs the recording one retry rather than a place in ``failed.csv``).

- :class:`LocalRunner`: ``workers`` slots, each a one-process pool made by
  :func:`aidentify.processes.process_pool` (workers exit when this process dies, ``kill -9``
  included). One process per slot, not one pool of N: when a worker dies, Python's pool breaks
  every task it holds, and a slot of its own tells exactly which recording was running there.
  Workers are spawned (not forked), so a worker starts clean of the parent's threads.
- :class:`ClusterRunner`: a Dask ``distributed`` scheduler's executor
  (``Client(address).get_executor()``), the optional ``cluster`` extra. Every worker needs the same
  environment and must see the recordings and the study folder at the same paths (docs/analyze.md).
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable

from aidentify.errors import DataError
from aidentify.processes import process_pool


class LocalRunner:
    """``workers`` single-process slots on this machine (0 = one per CPU core)."""

    def __init__(self, workers: int = 0):
        self.capacity = workers or os.cpu_count() or 1
        self._context = multiprocessing.get_context("spawn")
        self._slots: list[Any] = [None] * self.capacity
        self._busy: dict[Future, int] = {}
        self.describe = f"{self.capacity} worker process{'es' if self.capacity != 1 else ''} on this machine"

    def submit(self, task: Callable[[Any], Any], job: Any) -> Future:
        """Run ``task(job)`` on a free slot (the caller keeps at most ``capacity`` running)."""
        slot = next(i for i in range(self.capacity) if i not in self._busy.values())
        if self._slots[slot] is None:
            self._slots[slot] = process_pool(1, mp_context=self._context)
        future = self._slots[slot].submit(task, job)
        self._busy[future] = slot
        return future

    def release(self, future: Future) -> None:
        """Free the future's slot; a slot whose worker died gets a fresh process next time."""
        slot = self._busy.pop(future)
        if isinstance(future.exception(), BrokenProcessPool):
            self._slots[slot].shutdown(wait=False, cancel_futures=True)
            self._slots[slot] = None

    @staticmethod
    def died(exc: BaseException) -> bool:
        return isinstance(exc, BrokenProcessPool)

    def worker_pids(self) -> list[int]:
        """The PIDs of the live worker processes (for tests and the ``kill -9`` story)."""
        return [pid for pool in self._slots if pool is not None for pid in (pool._processes or {})]

    def close(self) -> None:
        for pool in self._slots:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._slots = [None] * self.capacity


class ClusterRunner:
    """Recordings on a Dask distributed cluster at ``address`` (``tcp://host:8786``)."""

    def __init__(self, address: str, connect_timeout_s: float = 10.0):
        try:
            from distributed import Client
        except ImportError:
            raise DataError("--cluster needs Dask's distributed: pip install 'aidentify[cluster]'") from None
        try:
            self.client = Client(address, timeout=connect_timeout_s, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise DataError(f"cannot reach the Dask scheduler at {address}: {exc}; start it with "
                            "`dask scheduler` and its workers with `dask worker ADDRESS` (docs/analyze.md)") from None
        self._executor = self.client.get_executor(pure=False)
        threads = sum(self.client.nthreads().values())
        if threads == 0:
            self.client.close()
            raise DataError(f"the Dask scheduler at {address} has no workers; start some with `dask worker {address}`")
        self.capacity = threads
        self.describe = f"Dask cluster {address}: {len(self.client.nthreads())} workers, {threads} threads"

    def submit(self, task: Callable[[Any], Any], job: Any) -> Any:
        return self._executor.submit(task, job)

    def release(self, future: Any) -> None:
        """Nothing to free: the scheduler places the next task."""

    @staticmethod
    def died(exc: BaseException) -> bool:
        from distributed.scheduler import KilledWorker

        return isinstance(exc, KilledWorker)

    def close(self) -> None:
        self._executor.shutdown(wait=False)
        self.client.close()


def make_runner(workers: int, cluster: str | None) -> LocalRunner | ClusterRunner:
    """The runner the settings ask for: a Dask cluster when ``cluster`` is an address, else local."""
    return ClusterRunner(cluster) if cluster else LocalRunner(workers)
