"""deploy/'s Prometheus files: the scrape config and alert rules pass promtool (its unit test of
the rules included) where Prometheus is installed, and the rules only name metrics the service
exports."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fc.live.metrics import PrometheusMetrics

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "deploy" / "fc-paper.rules.yml"


def test_the_rules_name_only_metrics_the_service_exports():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = {r["alert"]: r for g in groups for r in g["rules"]}
    assert set(rules) == {"FcPaperNoDecision", "FcPaperExchangeErrors"}
    metrics = PrometheusMetrics()
    metrics.exchange_error("timeout")  # a labelled counter shows once it has a child
    exported = {
        s.name
        for family in text_string_to_metric_families(generate_latest(metrics.registry).decode())
        for s in family.samples
    }
    for rule in rules.values():
        named = set(re.findall(r"\b(?:fc|process)_[a-z_]+", rule["expr"]))
        assert named and named <= exported, (rule["alert"], named - exported)
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    assert config["rule_files"] == [RULES.name]
    assert config["scrape_configs"][0]["job_name"] == "fc-paper"


def test_promtool_checks_the_config_and_unit_tests_the_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not installed (.ci/run installs Debian's prometheus)")
    for args in (
        ["check", "config", str(ROOT / "deploy" / "prometheus.yml")],
        ["check", "config", str(ROOT / "deploy" / "prometheus-instances.yml")],
        ["test", "rules", str(ROOT / "tests" / "prometheus" / "rules_test.yml")],
    ):
        out = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr
