"""The lab folder: a copy of the lab file, the manifest of its (variant, fold) units keyed by
content hash, one folder per finished unit, one per summarised variant, and the reports.

Every file is written to a temporary name and renamed into place (a unit's folder likewise),
so a kill -9 at any moment leaves finished units whole and loses at most those in flight.
running.json names the process working on the folder; a second `fc lab run` on a folder that a
live process holds is refused rather than racing it.
"""

import json
import os
import shutil
import socket
from contextlib import contextmanager
from pathlib import Path

from fc.core.errors import FcError

MANIFEST = "manifest.json"
RUNNING = "running.json"
LAB_COPY = "lab.toml"
UNITS = "units"
VARIANTS = "variants"
TMP = ".tmp-"


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write to a temporary file beside `path`, then rename: readers see the old file or the
    whole new one, never a part."""
    tmp = path.with_name(f"{TMP}{path.name}-{os.getpid()}")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


class LabFolder:
    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def for_lab(cls, out: Path, lab_path: Path, create: bool) -> "LabFolder":
        """The folder of the lab file `lab_path`: FcError when it holds another lab's manifest
        or is a folder of something else (nothing in it is touched); made when `create`."""
        folder = cls(out)
        manifest = folder.manifest()
        if manifest is not None:
            theirs = (folder.path / manifest["lab"]).resolve()
            if theirs != Path(lab_path).resolve():
                raise FcError(f"{out} holds the lab of {theirs}, not of {lab_path}; give another "
                              "--out")  # fmt: skip
        elif out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise FcError(f"{out} exists and is not a lab folder; give a new or empty --out")
        elif create:
            out.mkdir(parents=True, exist_ok=True)
        return folder

    def manifest(self) -> dict | None:
        path = self.path / MANIFEST
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            raise FcError(f"{path} is not a lab manifest; give another --out") from None

    def require_manifest(self) -> dict:
        manifest = self.manifest()
        if manifest is None:
            raise FcError(f"{self.path} is not a lab folder (no {MANIFEST}); run fc lab run first")
        return manifest

    def write_manifest(self, manifest: dict, lab_text: str) -> None:
        write_atomic(self.path / LAB_COPY, lab_text)
        write_atomic(self.path / MANIFEST, json.dumps(manifest, indent=1) + "\n")

    # units: UNITS/<key>/predictions.parquet and unit.json
    def unit_dir(self, key: str) -> Path:
        return self.path / UNITS / key

    def has_unit(self, key: str) -> bool:
        return (self.unit_dir(key) / "unit.json").is_file()

    def save_unit(self, key: str, result: dict, about: dict) -> None:
        units = self.path / UNITS
        units.mkdir(exist_ok=True)
        tmp = units / f"{TMP}{key}-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        (tmp / "predictions.parquet").write_bytes(result["predictions"])
        record = {**about, **{k: v for k, v in result.items() if k != "predictions"}}
        (tmp / "unit.json").write_text(json.dumps(record, indent=1) + "\n")
        if self.unit_dir(key).exists():  # an equal unit already there: keep it
            shutil.rmtree(tmp)
            return
        os.rename(tmp, self.unit_dir(key))

    def read_unit(self, key: str) -> dict:
        from fc.core.studies.lab_units import read_predictions

        unit = json.loads((self.unit_dir(key) / "unit.json").read_text())
        unit["frame"] = read_predictions((self.unit_dir(key) / "predictions.parquet").read_bytes())
        return unit

    def unit_seconds(self) -> dict[str, float]:
        """{unit key: seconds} of every finished unit (the plan's estimate reads them)."""
        out = {}
        for path in sorted((self.path / UNITS).glob("*/unit.json")):
            out[path.parent.name] = json.loads(path.read_text())["seconds"]
        return out

    def variant_dir(self, variant_id: str) -> Path:
        return self.path / VARIANTS / variant_id

    def read_variant(self, variant_id: str) -> dict | None:
        path = self.variant_dir(variant_id) / "variant.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def running(self) -> list[str]:
        """The units a live process is computing now ([] when none is)."""
        path = self.path / RUNNING
        if not path.is_file():
            return []
        info = json.loads(path.read_text())
        return info["units"] if _alive(info) else []

    def note_running(self, keys: list[str]) -> None:
        path = self.path / RUNNING
        info = json.loads(path.read_text())
        write_atomic(path, json.dumps({**info, "units": keys}))

    @contextmanager
    def run_lock(self):
        """Hold the folder for one `fc lab run`: refuse when a live process holds it, clear
        what a killed one left half-written, release at the end (note_running names the units
        in flight meanwhile)."""
        path = self.path / RUNNING
        if path.is_file() and _alive(json.loads(path.read_text())):
            raise FcError(f"{self.path} is being run by another process now (see {RUNNING}); "
                          "wait for it or stop it")  # fmt: skip
        for tmp in sorted(self.path.rglob(f"{TMP}*"), reverse=True):  # inner ones first
            shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink(missing_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname()}
        write_atomic(path, json.dumps({**me, "units": []}))
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _alive(info: dict) -> bool:
    """Is the process that wrote running.json still running? (On another host: assumed so.)"""
    if info.get("host") != socket.gethostname():
        return True
    try:
        os.kill(int(info["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
