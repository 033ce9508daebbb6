"""A real Dask cluster on loopback for the tests: `dask scheduler` and `dask worker` processes of
this virtual environment (the `cluster` extra), free ports, logs and scratch in a temporary
folder. Workers run without a nanny, one thread each, so a test can kill -9 the very process
that runs a unit. Tests that need it skip, saying why, only where it cannot start."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


class DaskCluster:
    """A scheduler and named workers; worker(name) is its Popen, by its fixed port."""

    def __init__(self, folder: Path, workers: int = 2):
        self.folder, self.port = folder, free_port()
        self.data_root = folder / "data-root"
        self.data_root.mkdir(parents=True)
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.scheduler = self._start("scheduler", ["scheduler", "--host", "127.0.0.1", "--port",
                                                   str(self.port), "--no-dashboard"])  # fmt: skip
        self._wait(lambda: _listening(self.port), "the scheduler")
        self.workers: dict[str, subprocess.Popen] = {}
        self.addresses: dict[str, str] = {}
        for i in range(1, workers + 1):
            self.add_worker(f"w{i}")

    def _start(self, name: str, args: list[str], env: dict | None = None) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        # the workers' own place of the shared data folder (core.studies.unit_inputs)
        env = {**os.environ, "FC_DATA_ROOT": str(self.data_root), **(env or {})}
        return subprocess.Popen([str(BIN / "dask"), *args], stdout=log, stderr=log,
                                cwd=self.folder, env=env)  # fmt: skip

    def _wait(self, ready, what: str, seconds: float = 60) -> None:
        deadline = time.time() + seconds
        while not ready():
            if time.time() > deadline:
                self.stop()
                pytest.skip(f"{what} of a loopback Dask cluster did not start in {seconds:.0f} s "
                            f"(logs in {self.folder})")  # fmt: skip
            time.sleep(0.2)

    def add_worker(self, name: str, env: dict | None = None) -> None:
        port = free_port()
        self.addresses[name] = f"tcp://127.0.0.1:{port}"
        self.workers[name] = self._start(name, [
            "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
            "--host", "127.0.0.1", "--worker-port", str(port), "--no-dashboard",
            "--local-directory", str(self.folder / name),
        ], env)  # fmt: skip
        self._wait(lambda: "Registered to:" in (self.folder / f"{name}.log").read_text(),
                   f"worker {name}")  # fmt: skip

    def kill(self, name: str) -> None:
        """kill -9 the worker process (no nanny: nothing restarts it)."""
        self.workers[name].send_signal(signal.SIGKILL)
        self.workers[name].wait()

    def name_of(self, address: str) -> str | None:
        return next((n for n, a in self.addresses.items() if address.startswith(a)), None)

    def stop(self) -> None:
        for process in [*self.workers.values(), self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers.values(), self.scheduler]:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="module")
def dask_cluster():
    if not (BIN / "dask").is_file():
        pytest.skip("no `dask` command in this environment: make install adds the cluster extra")
    cluster = DaskCluster(Path(tempfile.mkdtemp(prefix="fc-dask-")))
    yield cluster
    cluster.stop()
