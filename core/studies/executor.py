"""The executor seam: walk folds, sweep runs, lab units and tune trials are independent units
that the studies hand to an executor and consume as they complete, wherever they run.

Three executors, one interface (open_executor(...).run(fn, tasks)):
- serial (no option): each unit in this process, in dict order: today's path, unchanged;
- `--workers N`: a pool of N *spawned* processes on this machine (concurrent.futures): no
  scheduler to start, no extra install, and spawned (not forked) so no OpenMP or torch thread
  pool is copied mid-flight into a child;
- `--cluster ADDRESS`: a running Dask scheduler (core.studies.cluster, the one module that
  imports dask, lazily).

A task is a small picklable description (configs, boundaries, DataFile references with their
sha256); fn(task) runs in the worker and returns bytes-first results. Only the client writes.
"""

import ipaddress
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fc.core.errors import FcError

# on_event(key, event, info): event "start" | "done" | "failed"; info["worker"] where known
EventSink = Callable[[object, str, dict], None]

NON_LOOPBACK_WARNING = (
    "warning: a Dask scheduler runs the code its clients send it: never let one listen on a "
    "public address without TLS (tls:// with --tls-ca/--tls-cert/--tls-key)"
)


class UnitFailed(FcError):
    """A unit of work raised: one line naming the unit (its key) and what went wrong."""

    def __init__(self, key, message: str):
        super().__init__(f"{key}: {message}")
        self.key, self.message = key, message

    def __reduce__(self):  # two arguments: pickle them both back (a worker raises it too)
        return (UnitFailed, (self.key, self.message))


@dataclass(frozen=True)
class ExecutorOptions:
    """Where units run. All defaults: serial, in this process (today's path)."""

    workers: int | None = None  # local processes; 0 = one per core
    cluster: str | None = None  # tcp://HOST:PORT or tls://HOST:PORT of a Dask scheduler
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    data_root: str | None = None  # a folder the cluster's machines share: files by relative path

    @property
    def kind(self) -> str:
        return "cluster" if self.cluster else "serial" if self.workers is None else "local"

    def check(self) -> None:
        """Every bad combination as one line, before any work."""
        if self.workers is not None and self.workers < 0:
            raise FcError(f"--workers {self.workers}: give 0 (one per core) or a count of "
                          "processes")  # fmt: skip
        if self.workers is not None and self.cluster:
            raise FcError("--workers with --cluster: the cluster's workers run the units; "
                          "give one of the two")  # fmt: skip
        tls = [n for n in ("ca", "cert", "key") if getattr(self, f"tls_{n}")]
        scheme = self.cluster and scheduler_address(self.cluster)[0]
        if tls and scheme != "tls":
            raise FcError(f"--tls-{tls[0]} needs a tls://HOST:PORT --cluster address; "
                          f"got {self.cluster or 'no --cluster'}")  # fmt: skip
        if scheme == "tls" and len(tls) < 3:
            raise FcError("--cluster tls://…: give --tls-ca, --tls-cert and --tls-key")
        for name in tls:
            path = getattr(self, f"tls_{name}")
            if not Path(path).is_file():
                raise FcError(f"--tls-{name} {path}: no such file")
        if self.data_root is not None:
            if not self.cluster:
                raise FcError("--data-root is where cluster workers read the candles: give it "
                              "with --cluster")  # fmt: skip
            if not Path(self.data_root).is_dir():
                raise FcError(f"--data-root {self.data_root}: no such folder")

    def warning(self) -> str | None:
        """The warning a plain tcp:// address off this machine deserves, else None."""
        if not self.cluster:
            return None
        scheme, host, _ = scheduler_address(self.cluster)
        return NON_LOOPBACK_WARNING if scheme == "tcp" and not _loopback(host) else None

    def parallel(self) -> int:
        """How many units run at once here (the cluster's count is the scheduler's)."""
        return 1 if self.workers is None else self.workers or available_cores()


def scheduler_address(text: str) -> tuple[str, str, int]:
    """(scheme, host, port) of tcp://HOST:PORT or tls://HOST:PORT; anything else one line."""
    scheme, sep, rest = text.partition("://")
    host, colon, port = rest.rpartition(":")
    host = host.strip("[]")
    if not sep or scheme not in ("tcp", "tls") or not colon or not host or not port.isdigit():
        raise FcError(f"--cluster {text!r} is not a scheduler address; give tcp://HOST:PORT or "
                      "tls://HOST:PORT (dask scheduler prints it)")  # fmt: skip
    if not 0 < int(port) < 65536:
        raise FcError(f"--cluster {text}: port {port} is out of range 1-65535")
    return scheme, host, int(port)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_name() -> str:
    """This process, as progress bars and tests name it: host and process id."""
    return f"{socket.gethostname()}:{os.getpid()}"


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception as one line: an FcError's own message, anything else with its type."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text if isinstance(exc, FcError) else f"{type(exc).__name__}: {text}"


@contextmanager
def open_executor(options: ExecutorOptions = ExecutorOptions(), on_event: EventSink | None = None):
    """The executor the options name, closed (its processes or client) on leaving."""
    options.check()
    emit = on_event or (lambda key, event, info: None)
    if options.kind == "serial":
        yield SerialExecutor(emit)
    elif options.kind == "local":
        executor = LocalExecutor(options.parallel(), emit)
        try:
            yield executor
        finally:
            executor.close()
    else:
        from fc.core.studies.cluster import ClusterExecutor

        executor = ClusterExecutor(options, emit)
        try:
            yield executor
        finally:
            executor.close()


class SerialExecutor:
    """Each unit in this process, one after the other, in the tasks' order."""

    kind, workers = "serial", 1

    def __init__(self, emit: EventSink):
        self.emit = emit

    def share(self, path):
        """A data file for the units (core.studies.unit_inputs.DataFile): path and sha256."""
        from fc.core.studies.unit_inputs import data_file

        return data_file(path)

    def run(self, fn, tasks: dict) -> Iterator[tuple[object, object]]:
        name = worker_name()
        for key, task in tasks.items():
            self.emit(key, "start", {"worker": name})
            try:
                result = fn(task)
            except Exception as exc:
                self.emit(key, "failed", {"worker": name, "error": one_line(exc)})
                raise UnitFailed(key, one_line(exc)) from exc
            self.emit(key, "done", {"worker": name})
            yield key, result


def _local_unit(fn, task):
    return worker_name(), fn(task)


class LocalExecutor(SerialExecutor):
    """N spawned processes of this machine. At most N units are submitted at a time, so a
    unit's "start" is when it really starts and a failure leaves nothing queued to cancel."""

    kind = "local"

    def __init__(self, workers: int, emit: EventSink):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        super().__init__(emit)
        self.workers = workers
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def run(self, fn, tasks: dict) -> Iterator[tuple[object, object]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        waiting, running, failure = list(tasks.items()), {}, None
        while running or (waiting and failure is None):
            while waiting and len(running) < self.workers and failure is None:
                key, task = waiting.pop(0)
                running[self.pool.submit(_local_unit, fn, task)] = key
                self.emit(key, "start", {"worker": None})
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in sorted(done, key=lambda f: list(tasks).index(running[f])):
                key = running.pop(future)
                try:
                    worker, result = future.result()
                except Exception as exc:  # a raising unit, or a process that died (BrokenPool)
                    self.emit(key, "failed", {"worker": None, "error": one_line(exc)})
                    failure = failure or UnitFailed(key, one_line(exc))
                    continue
                self.emit(key, "done", {"worker": worker})
                yield key, result  # units still running when one fails finish and are kept
        if failure is not None:
            raise failure
