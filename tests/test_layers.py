"""The layers point one way (cli -> live/export -> core): checked on the import graph."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def modules(folder: str) -> list[str]:
    """Every module under the folder, subpackages included (core/ is split by role)."""
    return [
        "fc." + ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p.stem != "__init__"
    ]


def loaded_by(names: list[str]) -> set[str]:
    """The modules a fresh interpreter holds after importing `names`."""
    code = f"import sys, {', '.join(names)}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_live_service_and_cli_root_run_without_torch():
    live = modules("live")
    loaded = loaded_by([*live, "fc.cli.paper", "fc.cli.main"])
    assert "torch" not in loaded


def test_core_imports_no_cli_exchange_runtime_or_scheduler():
    loaded = loaded_by(modules("core"))
    assert "fc.core.learning.model" in loaded
    for banned in ("typer", "ccxt", "onnxruntime", "apscheduler"):
        assert banned not in loaded, f"core imports {banned}"
