"""What a unit of work trusts before it trains: its data files (by sha256, read from the client's
path, from --data-root, or from bytes the client sent once) and the code it runs (a hash of the
installed fc package and the versions of the libraries that shape its numbers)."""

import hashlib
import sys
import tempfile
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path

from fc.core.data.store import file_sha256
from fc.core.errors import FcError

# what a unit's numbers depend on besides fc itself (LightGBM and torch train, onnx exports)
LIBRARIES = ("torch", "lightgbm", "onnx", "numpy")


@dataclass(frozen=True)
class DataFile:
    """A candle file as a task names it: never its frame, only where and what it is."""

    path: str  # on the client: serial and local units read it there
    sha256: str
    relpath: str | None = None  # under --data-root, where cluster workers read it


# Set in a cluster worker for the unit it runs (core.studies.cluster): the shared data folder,
# and {sha256: bytes} the client scattered when there is none.
_SOURCES: dict = {"data_root": None, "files": {}}
_CHECKED: set = set()  # (path, sha256) pairs already hashed in this process


def data_file(path, data_root: str | None = None) -> DataFile:
    """The reference to a client file; with a data root, the file must lie under it."""
    path = Path(path)
    if not path.is_file():
        raise FcError(f"{path}: no such data file")
    relpath = None
    if data_root is not None:
        try:
            relpath = path.resolve().relative_to(Path(data_root).resolve()).as_posix()
        except ValueError:
            raise FcError(f"{path} is not under --data-root {data_root}; give a --data-root "
                          "that holds every data file") from None  # fmt: skip
    return DataFile(str(path), file_sha256(path), relpath)


def set_sources(data_root: str | None, files: dict) -> None:
    _SOURCES.update(data_root=data_root, files=files)


def local_path(ref: DataFile) -> Path:
    """Where this process reads the file, its sha256 checked (once per process): scattered bytes
    first, then --data-root, then the client's own path."""
    blob = _SOURCES["files"].get(ref.sha256)
    if blob is not None:
        path = Path(tempfile.gettempdir()) / f"fc-{ref.sha256}{Path(ref.path).suffix}"
        if not path.is_file():
            partial = path.with_suffix(".partial")
            partial.write_bytes(blob)
            partial.replace(path)
    elif _SOURCES["data_root"] is not None and ref.relpath is not None:
        path = Path(_SOURCES["data_root"]) / ref.relpath
    else:
        path = Path(ref.path)
    if (str(path), ref.sha256) in _CHECKED:
        return path
    where = f"{path} (on {_host()})"
    if not path.is_file():
        raise FcError(f"{where}: no such file; the worker's --data-root must hold the client's "
                      "data files at the same relative paths")  # fmt: skip
    found = file_sha256(path)
    if found != ref.sha256:
        raise FcError(f"{where}: sha256 {found[:12]}… is not the client's {ref.sha256[:12]}…; "
                      "copy the same file there")  # fmt: skip
    _CHECKED.add((str(path), ref.sha256))
    return path


def check_files(refs: list[DataFile], data_root: str | None) -> str | None:
    """Run on each worker before any unit: the first problem with its files, else None."""
    set_sources(data_root, {})
    try:
        for ref in refs:
            local_path(ref)
    except FcError as exc:
        return str(exc)
    return None


def _host() -> str:
    import socket

    return socket.gethostname()


@cache
def code_identity() -> dict:
    """{"fc": hash of the installed package's .py files, "python": x.y, library: version}."""
    import fc

    root = Path(fc.__file__).parent
    digest = hashlib.sha256()
    for path in sorted(_package_files(root)):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    identity = {"fc": digest.hexdigest()[:16], "python": "{}.{}".format(*sys.version_info[:2])}
    for name in LIBRARIES:
        try:
            identity[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            identity[name] = "absent"
    return identity


def _package_files(root: Path) -> list[Path]:
    """The package's modules: its own .py files and those of its subpackages (folders with an
    __init__.py), not tests, benches or a virtual environment that sit beside them."""
    files = list(root.glob("*.py"))
    for sub in root.iterdir():
        if sub.is_dir() and (sub / "__init__.py").is_file():
            files += _package_files(sub)
    return files


def identity_difference(client: dict, worker: dict) -> str | None:
    """The first way the worker's code differs from the client's, as words, else None."""
    for name, mine in client.items():
        theirs = worker.get(name, "absent")
        if theirs != mine:
            what = "fc code (a hash of its .py files)" if name == "fc" else name
            return f"{what} {theirs} on the worker, {mine} here"
    return None
