"""The executor seam's cluster half: units on a running Dask scheduler's workers.

The only module of fc that imports dask (inside its functions: the `cluster` extra), reached
only through core.studies.executor. Before any unit it checks that every worker runs the
client's fc code and library versions and can read the data files; the units then carry the
client's identity and check it again, for workers that join later."""

import time
import uuid

from fc.core.errors import FcError
from fc.core.studies.executor import (
    EventSink,
    ExecutorOptions,
    UnitFailed,
    one_line,
    worker_name,
)
from fc.core.studies.unit_inputs import (
    DataFile,
    check_files,
    code_identity,
    data_file,
    identity_difference,
    set_sources,
)

CONNECT_SECONDS = 5  # an unreachable scheduler is one line within 10 s
WORKER_SECONDS = 10  # a scheduler without workers: say so instead of waiting forever
POLL_SECONDS = 0.2


def _cluster_unit(fn, task, identity: dict, data_root, files: dict):
    """Runs in a worker: refuse other code, point the data files at their sources, run fn."""
    difference = identity_difference(identity, code_identity())
    if difference:
        raise FcError(f"worker {worker_name()} refused: {difference}")
    from distributed import get_worker

    set_sources(data_root, files)
    return f"{get_worker().address} ({worker_name()})", fn(task)


class ClusterExecutor:
    kind = "cluster"

    def __init__(self, options: ExecutorOptions, emit: EventSink):
        try:
            from distributed import Client
            from distributed.security import Security
        except ImportError:
            raise FcError("--cluster needs Dask: pip install 'candlecast[train,cluster]'") from None
        self.emit, self.data_root, self.files = emit, options.data_root, {}
        security = None
        if options.cluster.startswith("tls://"):
            security = Security(
                tls_ca_file=options.tls_ca,
                tls_client_cert=options.tls_cert,
                tls_client_key=options.tls_key,
                require_encryption=True,
            )
        try:
            self.client = Client(options.cluster, security=security, timeout=CONNECT_SECONDS,
                                 set_as_default=False)  # fmt: skip
        except (OSError, TimeoutError) as exc:
            raise FcError(f"--cluster {options.cluster}: no scheduler answered within "
                          f"{CONNECT_SECONDS} s ({one_line(exc)}); start `dask scheduler` there "
                          "or check the address") from None  # fmt: skip
        try:
            self._check_workers(options.cluster)
        except BaseException:
            self.client.close()
            raise
        self.workers = len(self.client.scheduler_info()["workers"])

    def _check_workers(self, address: str) -> None:
        try:
            self.client.wait_for_workers(1, timeout=WORKER_SECONDS)
        except (OSError, TimeoutError):
            raise FcError(f"--cluster {address}: no worker joined within {WORKER_SECONDS} s; "
                          f"start one with `dask worker {address}`") from None  # fmt: skip
        self.identity = code_identity()
        try:
            theirs = self.client.run(code_identity)
        except Exception as exc:  # a worker that cannot unpickle fc's function has no fc
            raise FcError(f"a worker of {address} cannot run fc ({one_line(exc)}); install the "
                          "same candlecast[train,cluster] there") from None  # fmt: skip
        for worker, identity in sorted(theirs.items()):
            difference = identity_difference(self.identity, identity)
            if difference:
                raise FcError(f"worker {worker} refused: {difference}; install the client's "
                              "candlecast there")  # fmt: skip

    def close(self) -> None:
        self.client.close()

    def share(self, path) -> DataFile:
        """A data file for the units: checked on every worker under --data-root, or sent to
        the cluster once (scatter) and written beside each worker on first use."""
        ref = data_file(path, self.data_root)
        if self.data_root is not None:
            problems = self.client.run(check_files, [ref], self.data_root)
            for worker, problem in sorted(problems.items()):
                if problem:
                    raise FcError(f"--data-root on worker {worker}: {problem}")
        elif ref.sha256 not in self.files:
            with open(ref.path, "rb") as f:
                self.files[ref.sha256] = self.client.scatter(f.read(), broadcast=True, hash=False)
        return ref

    def run(self, fn, tasks: dict):
        from distributed import as_completed

        token = uuid.uuid4().hex[:8]
        keys = {}
        for key, task in tasks.items():
            future = self.client.submit(
                _cluster_unit, fn, task, self.identity, self.data_root, self.files,
                key=f"fc-{key}-{token}", pure=False,
            )  # fmt: skip
            keys[future] = key
        pending = as_completed(list(keys), loop=self.client.loop)
        started, finished = set(), set()
        try:
            while not pending.is_empty():
                self._started(keys, started)
                for future in pending.next_batch(block=False):
                    key = keys[future]
                    finished.add(future)
                    if future not in started:  # it ran between two looks at the workers
                        started.add(future)
                        self.emit(key, "start", {"worker": None})
                    if future.status != "finished":
                        message = one_line(future.exception())
                        self.emit(key, "failed", {"worker": None, "error": message})
                        raise UnitFailed(key, message)
                    worker, result = future.result()
                    self.emit(key, "done", {"worker": worker})
                    yield key, result
                time.sleep(POLL_SECONDS)
        finally:  # a failure, or a caller that stopped reading: nothing left running for us
            self.client.cancel([f for f in keys if f not in finished])

    def _started(self, keys: dict, started: set) -> None:
        """ "start" for each unit a worker now processes, with that worker's name."""
        by_key = {f.key: f for f in keys}
        for worker, running in self.client.processing().items():
            for name in running:
                future = by_key.get(name)
                if future is not None and future not in started:
                    started.add(future)
                    self.emit(keys[future], "start", {"worker": worker})
