"""Inference in worker processes, so that ``workers`` photos are labelled truly in parallel.

LiteRT's ``invoke`` holds Python's GIL, and so does MTCNN's numpy glue between
its networks: measured on 2 cores, two threads each with its own detector
label no more photos a second than one (32/s either way; the classifier 102/s
against 97/s). So the server runs detectors and models in ``workers`` processes
(spawned, each loading every model and the detector once, when the server
starts) and keeps only HTTP, tracking and JSON in its own process.

Each worker holds one :class:`Engine`. Photos (``POST /api/predict``) travel as
their file bytes and are decoded, checked, detected, cut and classified in
the worker (the ``stills`` live pipeline); camera and stream frames keep their
per-connection pipeline (tracker, smoothing) in the server process, and only
its detector and classifier calls go to a worker (:class:`RemoteDetector`,
:class:`RemoteClassifier`). The pool's queue is first come, first served.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from aidentify.config import LiveConfig, ServeConfig
from aidentify.errors import AidentifyError
from aidentify.faces.detector import FaceDetector, Faces, make_detector
from aidentify.inference.classify import BATCH_BUCKETS, Classifier, ModelInfo, load_classifier
from aidentify.live.pipeline import LivePipeline, video_settings
from aidentify.processes import process_pool
from aidentify.serve.errors import ApiError
from aidentify.serve.uploads import decode_image, frames_note


class Engine:
    """Every model and both detectors, loaded once; used by one thread at a time (one per worker process)."""

    def __init__(self, config: ServeConfig, models: dict[str, Path]):
        self.config = config
        self.live_config: LiveConfig = config.live_config()
        self.classifiers: dict[str, Classifier] = {
            name: load_classifier(path, config.backend, config.threads) for name, path in models.items()}
        self.detectors: dict[str, FaceDetector] = {
            "still": make_detector(self.live_config.detect, "still"),
            "video": make_detector(video_settings(self.live_config.detect), "video"),
        }

    def warm_up(self, image: np.ndarray) -> None:
        """Run every detector and model once on ``image``, so the first request is not the slow one."""
        for classifier in self.classifiers.values():
            pipeline = LivePipeline(classifier, self.live_config, stills=True, detector=self.detectors["still"])
            pipeline(image, draw=False)
            size = classifier.info.input_size
            for batch in (b for b in BATCH_BUCKETS if b <= 8):  # a photo's faces are few
                classifier(np.zeros((batch, size, size), np.uint8))
        self.detectors["video"].detect(image)

    def predict(self, data: bytes, model: str) -> tuple[Any, tuple[int, ...], float, str | None]:
        """Decode a photo and run the stills pipeline: ``(FrameResult, image shape, decode ms, note)``;
        the note says when only the first frame of an animation was labelled (else None)."""
        import time

        start = time.perf_counter()
        image = decode_image(data, self.config.limits.max_megapixels)
        decode_ms = (time.perf_counter() - start) * 1000
        pipeline = LivePipeline(self.classifiers[model], self.live_config, stills=True,
                                detector=self.detectors["still"])
        _, result = pipeline(image, draw=False)
        return result, image.shape, decode_ms, frames_note(data)


# ------------------------------------------------------------------ inside a worker process
_engine: Engine | None = None
_start_error: BaseException | None = None


def _start_worker(config_json: str, models: dict[str, str]) -> None:
    """Load the engine; an error is kept for :func:`_ready` to raise in the server process.

    An exception escaping a pool initializer is printed by ``concurrent.futures``
    as a traceback and breaks the pool; kept and raised from a task instead, it
    reaches the server as itself (a ``DataError`` for a model LiteRT cannot
    run), and ``serve`` prints the one ``error:`` line ``live`` prints.
    """
    global _engine, _start_error
    import cv2

    cv2.setNumThreads(1)  # see SINGLE_THREADED
    try:
        config = ServeConfig.model_validate_json(config_json)
        _engine = Engine(config, {name: Path(path) for name, path in models.items()})
        _engine.warm_up(warm_up_image())
    except Exception as exc:
        _start_error = exc


def _ready() -> int:
    import time

    if _start_error is not None:
        raise _start_error
    time.sleep(0.2)  # long enough that every worker process gets one of these
    return os.getpid()


def predict_photo(data: bytes, model: str):
    """In a worker: decode one uploaded photo and label its faces with ``model`` (see the engine's predict)."""
    return _engine.predict(data, model)


def _detect(image: np.ndarray, kind: str) -> Faces:
    return _engine.detectors[kind].detect(image)


def _classify(model: str, crops: np.ndarray) -> np.ndarray:
    return _engine.classifiers[model](crops)


def warm_up_image() -> np.ndarray:
    """A 640x480 frame with real faces (the demo video's first frame)."""
    from aidentify.live.demo import demo_frames

    return next(iter(demo_frames(faces=4, seconds=1 / 30, fps=30.0)))


# ------------------------------------------------------------------ in the server process
# Each worker is one thread of work: OpenCV's and the BLAS libraries' own thread pools would
# put ``workers`` x cores spinning threads on the cores (measured on 2 cores with MTCNN at
# min_face 20: two workers labelled 21 photos a second instead of 2 x 20 with them).
SINGLE_THREADED = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@contextlib.contextmanager
def _child_environment(variables: dict[str, str]) -> Iterator[None]:
    """``variables`` set while worker processes are spawned (they copy the environment then)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class WorkerPool:
    """``workers`` spawned processes, each with an :class:`Engine`; restarted if one dies."""

    def __init__(self, config: ServeConfig, models: dict[str, Path]):
        self.size = config.workers or os.cpu_count() or 1
        self._args = (config.model_dump_json(), {name: str(path) for name, path in models.items()})
        self._lock = threading.Lock()
        self._slots = None  # asyncio.Semaphore(size), made on the event loop by the first run()
        # Photos (run()): waiting for a worker, running in one, dropped while waiting because their
        # client left, refused after queue_timeout; /api/health reports them.
        self.queue = {"waiting": 0, "running": 0, "dropped": 0, "refused": 0}
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        executor = process_pool(self.size, mp_context=multiprocessing.get_context("spawn"),
                                initializer=_start_worker, initargs=self._args)
        try:
            with _child_environment(SINGLE_THREADED):
                futures = [executor.submit(_ready) for _ in range(self.size * 2)]
            pids = {future.result() for future in futures}
        except BrokenProcessPool:
            executor.shutdown(wait=False, cancel_futures=True)
            raise AidentifyError("the server's worker processes failed to start "
                                 "(run `aidentify serve --verbose`; their error is printed above)") from None
        except Exception:  # a worker's own start-up error (see _start_worker), raised here as itself
            # wait for the workers to go: left running, they race the interpreter's exit, whose
            # concurrent.futures hook then prints a traceback under the one error line
            executor.shutdown(wait=True, cancel_futures=True)
            raise
        self.pids = sorted(pids)
        return executor

    def submit(self, function, *args) -> Future:
        with self._lock:
            executor = self._executor
        try:
            return executor.submit(function, *args)
        except (BrokenProcessPool, RuntimeError):
            return self._restart(executor).submit(function, *args)

    def call(self, function, *args) -> Any:
        """Run ``function(*args)`` in a worker and wait for it (from a thread, not the event loop)."""
        future = self.submit(function, *args)
        try:
            return future.result()
        except BrokenProcessPool:
            self._restart(self._executor)
            raise ApiError(500, "a worker process died while labelling this image; it was restarted") from None

    async def run(self, function, *args, queue_timeout: float | None = None) -> Any:
        """``function(*args)`` in a worker, awaited on the event loop (no thread held while it runs).

        Work waits here, in the server process, until a worker is free (one
        slot per worker): waiting work can still be dropped, by cancelling the
        awaiting task (its client hung up), while work handed to the process
        pool cannot. A slot is freed when its work ends in the worker, not when
        its client leaves, so abandoned work that is already running delays
        the queue by at most its own run time. ``ApiError`` 503 when no worker
        was free within ``queue_timeout`` seconds.
        """
        import asyncio

        loop = asyncio.get_running_loop()
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.size)
        slots = self._slots
        self.queue["waiting"] += 1
        try:
            await asyncio.wait_for(slots.acquire(), queue_timeout)
        except TimeoutError:
            self.queue["refused"] += 1
            raise ApiError(503, f"the server is busy: no worker was free within {queue_timeout:g} s "
                                "(limits.queue_timeout_s); try again in a moment") from None
        except asyncio.CancelledError:
            self.queue["dropped"] += 1
            raise
        finally:
            self.queue["waiting"] -= 1
        try:
            future = self.submit(function, *args)
        except BaseException:
            slots.release()
            raise
        self.queue["running"] += 1

        def released() -> None:
            self.queue["running"] -= 1
            slots.release()

        def free(_: Future) -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: the server is stopping
                loop.call_soon_threadsafe(released)

        future.add_done_callback(free)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            self._restart(self._executor)
            raise ApiError(500, "a worker process died while labelling this image; it was restarted") from None

    def _restart(self, broken: ProcessPoolExecutor) -> ProcessPoolExecutor:
        with self._lock:
            if self._executor is broken:
                broken.shutdown(wait=False, cancel_futures=True)
                self._executor = self._start()
            return self._executor

    def processes(self) -> list[int]:
        return list(self.pids)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class RemoteDetector:
    """A :class:`FaceDetector` whose work is done in a worker process (the server's camera frames)."""

    def __init__(self, pool: WorkerPool, kind: str, name: str):
        self.pool, self.kind, self.name = pool, kind, name

    def detect(self, image: np.ndarray) -> Faces:
        return self.pool.call(_detect, image, self.kind)


class RemoteClassifier:
    """A classifier whose batches run in a worker process; ``info`` is read from the model file here."""

    def __init__(self, pool: WorkerPool, model: str, info: ModelInfo):
        self.pool, self.model, self.info = pool, model, info

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        return self.pool.call(_classify, self.model, np.asarray(crops, dtype=np.uint8))
