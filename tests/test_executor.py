"""The executor seam (core.studies.executor): serial and local processes give the same results,
a raising unit is one line naming it, bad options are refused before any work, and the data and
code checks a worker makes (core.studies.unit_inputs) catch what they promise to."""

import hashlib
import os

import pytest

from fc.core.errors import FcError
from fc.core.studies.executor import ExecutorOptions, UnitFailed, open_executor, scheduler_address
from fc.core.studies.unit_inputs import (
    DataFile,
    check_files,
    code_identity,
    data_file,
    identity_difference,
    local_path,
)


def square(task: dict) -> dict:
    """A unit: module level, so a spawned process can import it."""
    if task["n"] < 0:
        raise FcError(f"no square of {task['n']} here")
    return {"square": task["n"] ** 2, "pid": os.getpid()}


def divide(task: dict) -> float:
    return 1 / task["n"]


TASKS = {f"unit-{n}": {"n": n} for n in range(6)}


def test_serial_runs_in_this_process_in_order_with_events():
    events = []
    on_event = lambda key, event, info: events.append((key, event, info["worker"]))  # noqa: E731
    with open_executor(ExecutorOptions(), on_event) as ex:
        results = list(ex.run(square, TASKS))
    assert [key for key, _ in results] == list(TASKS)
    assert [r["square"] for _, r in results] == [n * n for n in range(6)]
    assert {r["pid"] for _, r in results} == {os.getpid()}
    assert [e[:2] for e in events[:2]] == [("unit-0", "start"), ("unit-0", "done")]
    assert events[0][2].endswith(f":{os.getpid()}")


def test_local_processes_give_the_serial_results_from_other_processes():
    events = []
    on_event = lambda key, event, info: events.append((key, event, info))  # noqa: E731
    with open_executor(ExecutorOptions(workers=2), on_event) as ex:
        results = dict(ex.run(square, TASKS))
    assert {k: r["square"] for k, r in results.items()} == {
        k: t["n"] ** 2 for k, t in TASKS.items()
    }
    pids = {r["pid"] for r in results.values()}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2
    done = [info["worker"] for _, event, info in events if event == "done"]
    assert len(done) == 6 and {int(w.rsplit(":", 1)[1]) for w in done} == pids


@pytest.mark.parametrize("options", [ExecutorOptions(), ExecutorOptions(workers=2)])
def test_a_raising_unit_is_one_line_naming_it_and_the_others_are_kept(options):
    tasks = {"fold-1": {"n": 1}, "fold-2": {"n": -2}, "fold-3": {"n": 3}}
    got = {}
    with open_executor(options) as ex, pytest.raises(UnitFailed) as caught:
        for key, result in ex.run(square, tasks):
            got[key] = result["square"]
    assert str(caught.value) == "fold-2: no square of -2 here"
    assert caught.value.key == "fold-2" and isinstance(caught.value, FcError)
    assert got["fold-1"] == 1 and "fold-2" not in got


def test_a_programming_error_in_a_unit_names_its_type():
    with open_executor(ExecutorOptions(workers=1)) as ex, pytest.raises(UnitFailed) as caught:
        list(ex.run(divide, {"zero": {"n": 0}}))
    assert str(caught.value) == "zero: ZeroDivisionError: division by zero"


@pytest.mark.parametrize(
    "options, words",
    [
        (ExecutorOptions(workers=-1), "--workers -1: give 0"),
        (ExecutorOptions(workers=2, cluster="tcp://127.0.0.1:8786"), "--workers with --cluster"),
        (ExecutorOptions(cluster="127.0.0.1:8786"), "is not a scheduler address"),
        (ExecutorOptions(cluster="http://127.0.0.1:8786"), "is not a scheduler address"),
        (ExecutorOptions(cluster="tcp://127.0.0.1:99999"), "out of range"),
        (ExecutorOptions(cluster="tcp://:8786"), "is not a scheduler address"),
        (ExecutorOptions(cluster="tcp://127.0.0.1:8786", tls_ca="ca.pem"), "--tls-ca needs a tls"),
        (ExecutorOptions(tls_cert="c.pem"), "--tls-cert needs a tls://HOST:PORT --cluster"),
        (ExecutorOptions(cluster="tls://127.0.0.1:8786"), "give --tls-ca, --tls-cert and --tls"),
        (ExecutorOptions(data_root="."), "--data-root is where cluster workers"),
        (ExecutorOptions(cluster="tcp://127.0.0.1:1", data_root="/nonexistent"), "no such folder"),
    ],
)
def test_bad_options_are_one_line_before_any_work(options, words):
    with pytest.raises(FcError) as caught:
        options.check()
    message = str(caught.value)
    assert words in message and "\n" not in message


def test_tls_files_must_exist(tmp_path):
    options = ExecutorOptions(cluster="tls://127.0.0.1:8786", tls_ca=str(tmp_path / "ca.pem"),
                              tls_cert=str(tmp_path), tls_key=str(tmp_path))  # fmt: skip
    with pytest.raises(FcError, match="--tls-ca .*ca.pem: no such file"):
        options.check()


def test_a_plain_tcp_address_off_this_machine_is_warned_about():
    assert ExecutorOptions(cluster="tcp://10.0.0.5:8786").warning().startswith("warning: a Dask")
    assert ExecutorOptions(cluster="tcp://127.0.0.1:8786").warning() is None
    assert ExecutorOptions(cluster="tcp://localhost:8786").warning() is None
    assert ExecutorOptions(cluster="tcp://[::1]:8786").warning() is None
    assert scheduler_address("tls://sched.example:8786") == ("tls", "sched.example", 8786)
    assert ExecutorOptions().kind == "serial" and ExecutorOptions(workers=0).parallel() >= 1


def test_a_data_file_is_read_only_with_its_sha256(tmp_path):
    (tmp_path / "root" / "sub").mkdir(parents=True)
    path = tmp_path / "root" / "sub" / "candles.parquet"
    path.write_bytes(b"candles")
    ref = data_file(path, str(tmp_path / "root"))
    assert ref.relpath == "sub/candles.parquet"
    assert ref.sha256 == hashlib.sha256(b"candles").hexdigest()
    assert check_files([ref], str(tmp_path / "root")) is None
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    message = check_files([ref], str(other))
    assert "no such file" in message and "--data-root" in message
    (other / "sub" / "candles.parquet").write_bytes(b"candles, edited")
    assert "is not the client's" in check_files([ref], str(other))
    with pytest.raises(FcError, match="is not under --data-root"):
        data_file(path, str(other))
    with pytest.raises(FcError, match="no such data file"):
        data_file(tmp_path / "missing.parquet")
    check_files([], None)  # back to the client's own paths
    assert local_path(DataFile(str(path), ref.sha256)) == path


def test_code_identity_names_the_first_difference():
    mine = code_identity()
    assert set(mine) >= {"fc", "python", "torch", "lightgbm", "onnx"} and len(mine["fc"]) == 16
    assert identity_difference(mine, dict(mine)) is None
    other = {**mine, "lightgbm": "3.0.0"}
    assert (
        identity_difference(mine, other) == f"lightgbm 3.0.0 on the worker, {mine['lightgbm']} here"
    )
    assert identity_difference(mine, {**mine, "fc": "0" * 16}).startswith("fc code (a hash")


def die(task: dict) -> None:
    os._exit(9)  # a worker process killed mid-unit (out of memory, kill -9)


def test_a_local_process_that_dies_is_one_line_naming_its_unit():
    with open_executor(ExecutorOptions(workers=1)) as ex, pytest.raises(UnitFailed) as caught:
        list(ex.run(die, {"fold-07": {}}))
    assert str(caught.value).startswith("fold-07: BrokenProcessPool: ")
