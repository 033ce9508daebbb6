"""A throwaway PostgreSQL server on loopback for the tests: Debian's initdb and pg_ctl (which
.ci/run installs), a data folder in a temporary directory, a free port, trust authentication.
PostgreSQL refuses to run as root, so as root the server runs as `nobody`. Tests that need it
skip, saying why, only where no server can be started."""

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _binary(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    return found[-1] if found else shutil.which(name)


def _version(path: str) -> float:
    try:
        return float(Path(path).parents[1].name)
    except ValueError:
        return 0.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(command: list[str], user: str | None, cwd: Path) -> subprocess.CompletedProcess:
    if user:  # as root: PostgreSQL will not run as root
        command = ["runuser", "-u", user, "--", *command]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def postgres_url():
    """postgresql://fc@127.0.0.1:PORT/postgres of a server started for this test session."""
    initdb, pg_ctl = _binary("initdb"), _binary("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("no PostgreSQL server (initdb, pg_ctl): .ci/run installs Debian's postgresql")
    user = "nobody" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="fc-postgres-"))
    if user:
        entry = pwd.getpwnam(user)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
    data, port = folder / "data", _free_port()
    made = _run([initdb, "-D", str(data), "-U", "fc", "--auth=trust", "--no-sync"], user, folder)
    started = made.returncode == 0 and _run(
        [pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "-o",
         f"-h 127.0.0.1 -p {port} -k {folder} -c fsync=off -c max_connections=50", "start"],
        user, folder,
    ).returncode == 0  # fmt: skip
    if not started:
        log = folder / "server.log"
        why = (log.read_text() if log.is_file() else made.stderr).strip().splitlines()[-1:]
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {' '.join(why) or 'initdb failed'}")
    try:
        yield f"postgresql://fc@127.0.0.1:{port}/postgres"
    finally:
        _run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], user, folder)
        shutil.rmtree(folder, ignore_errors=True)
