"""A real Prometheus scrapes a running `fc paper` (`make test-all`): the decision counter rises by
one per 1m candle on the endpoint, and Prometheus' HTTP API returns the same count."""

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

import pytest
from test_live_metrics import free_port, scrape, value, wait_for
from test_live_process import NotifySocket, start_paper, stop_with_sigterm
from test_live_slow import live_market, model_1m  # noqa: F401  (fixtures)

pytestmark = pytest.mark.slow

CONFIG = """
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: fc-paper
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def query(api_port: int, promql: str) -> list:
    url = f"http://127.0.0.1:{api_port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=5) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def start_prometheus(tmp_path, target_port: int, api_port: int):
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not installed (.ci/run installs Debian's prometheus)")
    (tmp_path / "prometheus.yml").write_text(CONFIG.format(port=target_port))
    argv = [binary, f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{api_port}"]  # fmt: skip
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_prometheus_scrapes_one_more_decision_per_candle(live_market, model_1m, tmp_path):  # noqa: F811
    port, api_port = free_port(), free_port()
    prometheus = start_prometheus(tmp_path, port, api_port)
    listener = NotifySocket(tmp_path / "notify")
    proc = start_paper(model_1m, live_market, tmp_path / "j.sqlite", listener.path, "--delay",
                       "1", "--window", "30", "--metrics-port", str(port))  # fmt: skip
    try:
        assert listener.wait_for("READY=1", 30)
        first = wait_for(port, "fc_decisions_total", {"policy": "discrete"}, 1, 70)
        n = value(first, "fc_decisions_total", policy="discrete")
        candle = value(first, "fc_last_candle_timestamp_seconds")
        later = wait_for(port, "fc_decisions_total", {"policy": "discrete"}, n + 1, 70)
        assert value(later, "fc_decisions_total", policy="discrete") == n + 1
        assert value(later, "fc_decisions_total", policy="proportional") == n + 1
        assert value(later, "fc_last_candle_timestamp_seconds") == candle + 60
        deadline, seen = time.monotonic() + 30, []
        while time.monotonic() < deadline:
            seen = query(api_port, 'fc_decisions_total{job="fc-paper",policy="discrete"}')
            if seen and float(seen[0]["value"][1]) == n + 1:
                break
            time.sleep(1)
        assert seen and float(seen[0]["value"][1]) == n + 1, seen
        assert query(api_port, 'up{job="fc-paper"}')[0]["value"][1] == "1"
        assert scrape(port)  # still serving
    finally:
        stop_with_sigterm(proc)
        prometheus.terminate()
        try:
            prometheus.wait(10)
        except subprocess.TimeoutExpired:
            prometheus.kill()
            prometheus.wait()
    assert proc.returncode == 0
