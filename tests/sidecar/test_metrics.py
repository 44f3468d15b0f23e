"""``mangaroute serve --metrics emf|otlp|prometheus``: a real sidecar process, real RPCs, and
the metrics read back the way an operator's tools read them - a Prometheus scrape over HTTP,
an OTLP/HTTP receiver decoding the exporter's protobuf, EMF lines parsed as JSON."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from prometheus_client.parser import text_string_to_metric_families

from mangaroute import load_default_config
from mangaroute.config import default_config_text
from mangaroute.sidecar import SidecarError
from mangaroute.sidecar._generated.mangaroute_api.v1 import router_pb2 as pb
from mangaroute.sidecar.metrics import MetricsSettings, SidecarMetrics, parse_metrics
from mangaroute.telemetry import semconv as sc

from .conftest import ServeProcess, connect, report, wait_for

SERVE_TCP = [sys.executable, "-m", "mangaroute", "serve", "--listen", "127.0.0.1:0"]
SERVE = [*SERVE_TCP, "--demo"]
HAIKU_COST_USD = (1000 * 0.25 + 200 * 1.25) / 1e6  # the shipped config's Haiku prices


def _drive(address: str) -> Counter[str]:
    """Three decisions, two OK Haiku calls (500 ms, 1000 in / 200 out tokens) and a throttled
    Sonnet call (250 ms); the decisions' targets, counted."""
    chosen: Counter[str] = Counter()
    with connect(address) as (_, stub):
        for _ in range(3):
            chosen[
                stub.Choose(pb.ChooseRequest(request_class="manga"), timeout=10).target.name
            ] += 1
        for _ in range(2):
            stub.Report(report("ondemand-haiku", input_tokens=1000, output_tokens=200), timeout=10)
        throttled = report(
            "ondemand-sonnet",
            outcome=pb.OUTCOME_THROTTLED,
            latency_ms=250.0,
            error_code="ThrottlingException",
        )
        stub.Report(throttled, timeout=10)
    return chosen


def _stop(server: ServeProcess) -> None:
    server.process.send_signal(signal.SIGTERM)
    assert server.finish() == 0
    assert "Traceback" not in "".join(server.log)


# -- prometheus ------------------------------------------------------------------------------


def _scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Samples by name, as Prometheus parses the exposition."""
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _total(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for have, v in samples if all(have.get(k) == w for k, w in labels.items()))


def test_prometheus_scrape_shows_the_library_metrics_after_rpcs(
    spawn: type[ServeProcess],
) -> None:
    server = spawn([*SERVE, "--metrics", "prometheus", "--prometheus-port", "0"])
    address = server.address()
    found = re.search(
        r"Prometheus scrape endpoint at (http://127\.0\.0\.1:\d+/metrics)", "".join(server.log)
    )
    assert found, "".join(server.log)
    url = found.group(1)
    chosen = _drive(address)
    wait_for(lambda: _total(_scrape(url).get("mangaroute_decisions_total", [])) == 3)
    samples = _scrape(url)

    decisions = samples["mangaroute_decisions_total"]
    assert {t: _total(decisions, mangaroute_target=t) for t in chosen} == dict(chosen)
    duration = {"mangaroute_target": "ondemand-haiku", "mangaroute_outcome": "ok"}
    assert _total(samples["gen_ai_client_operation_duration_seconds_count"], **duration) == 2
    assert _total(samples["gen_ai_client_operation_duration_seconds_sum"], **duration) == 1.0
    throttled = {"mangaroute_target": "ondemand-sonnet", "error_type": "ThrottlingException"}
    assert _total(samples["gen_ai_client_operation_duration_seconds_sum"], **throttled) == 0.25
    tokens = samples["gen_ai_client_token_usage_sum"]
    assert _total(tokens, gen_ai_token_type="input") == 2000
    assert _total(tokens, gen_ai_token_type="output") == 400
    spend = samples["mangaroute_spend_USD_total"]
    assert _total(spend, mangaroute_target="ondemand-haiku") == pytest.approx(2 * HAIKU_COST_USD)
    breakers = samples["mangaroute_breaker_state"]
    assert _total(breakers, mangaroute_breaker_state="closed") == 4  # every target, from start
    info = samples["target_info"][0][0]
    assert info["service_name"] == "mangaroute-sidecar"
    _stop(server)


def test_a_busy_prometheus_port_exits_2_naming_the_flag(spawn: type[ServeProcess]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = spawn([*SERVE, "--metrics", "prometheus", "--prometheus-port", str(port)])
        assert server.finish() == 2
    err = "".join(server.log)
    assert f"--prometheus-port {port}: cannot listen" in err
    assert "Traceback" not in err


# -- otlp ------------------------------------------------------------------------------------


class _OtlpReceiver:
    """A loopback OTLP/HTTP metrics receiver: decodes each POST /v1/metrics body."""

    def __init__(self) -> None:
        self.requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.paths: list[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                message = metrics_service_pb2.ExportMetricsServiceRequest()
                message.ParseFromString(body)
                received.paths.append(self.path)
                received.requests.append(message)
                reply = metrics_service_pb2.ExportMetricsServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def latest(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """Resource attributes and, per metric name, its data points in the last export
        that had it (the exporter sends cumulative totals)."""
        resource: dict[str, Any] = {}
        points: dict[str, Any] = {}
        for request in self.requests:
            for rm in request.resource_metrics:
                resource = {a.key: a.value.string_value for a in rm.resource.attributes}
                for scope in rm.scope_metrics:
                    for metric in scope.metrics:
                        kind = metric.WhichOneof("data")
                        points[metric.name] = list(getattr(metric, kind).data_points)
        return resource, points

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_OtlpReceiver]:
    received = _OtlpReceiver()
    yield received
    received.close()


def _attrs(point: Any) -> dict[str, str]:
    return {a.key: a.value.string_value for a in point.attributes}


def test_otlp_exports_the_library_metrics_to_the_configured_endpoint(
    spawn: type[ServeProcess], receiver: _OtlpReceiver
) -> None:
    env = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=test",
    }
    env.pop("OTEL_SERVICE_NAME", None)
    server = spawn([*SERVE, "--metrics", "otlp"], env=env)
    address = server.address()
    chosen = _drive(address)
    _stop(server)  # the last export happens at shutdown

    assert receiver.paths and set(receiver.paths) == {"/v1/metrics"}
    resource, points = receiver.latest()
    assert resource["service.name"] == "mangaroute-sidecar"
    assert resource["deployment.environment.name"] == "test"
    assert {
        sc.METRIC_DECISIONS,
        sc.METRIC_OPERATION_DURATION,
        sc.METRIC_TOKEN_USAGE,
        sc.METRIC_SPEND,
        sc.METRIC_BREAKER_STATE,
    } <= set(points)
    decided = Counter[str]()
    for point in points[sc.METRIC_DECISIONS]:
        decided[_attrs(point)[sc.TARGET]] += point.as_int
    assert decided == chosen
    durations = {
        _attrs(p)[sc.TARGET]: (p.count, p.sum) for p in points[sc.METRIC_OPERATION_DURATION]
    }
    assert durations == {"ondemand-haiku": (2, 1.0), "ondemand-sonnet": (1, 0.25)}
    spend = {_attrs(p)[sc.TARGET]: p.as_double for p in points[sc.METRIC_SPEND]}
    assert spend == {"ondemand-haiku": pytest.approx(2 * HAIKU_COST_USD)}


def test_an_unsupported_otlp_protocol_is_refused_by_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    with pytest.raises(SidecarError, match=r"OTEL_EXPORTER_OTLP_PROTOCOL='http/json'.*grpc"):
        SidecarMetrics(MetricsSettings(("otlp",)), load_default_config().targets)


# -- emf -------------------------------------------------------------------------------------


def test_emf_lines_on_stdout_carry_the_cloudwatch_metric_set(spawn: type[ServeProcess]) -> None:
    server = spawn([*SERVE, "--metrics", "emf"], stdout=True)
    chosen = _drive(server.address())
    _stop(server)  # the final flush happens at shutdown

    documents = [json.loads(line) for line in server.stdout]
    assert documents
    values: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}
    for doc in documents:
        (directive,) = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "MangaAssist/Deployment"
        for dims in directive["Dimensions"]:
            key = tuple((d, doc[d]) for d in dims)
            for metric in directive["Metrics"]:
                values[(metric["Name"], key)] = doc[metric["Name"]]
    for target, count in chosen.items():
        pattern = load_default_config().target(target).pattern.value
        assert values[("RoutingDecision", (("Target", target), ("Pattern", pattern)))] == count
    haiku = (("Target", "ondemand-haiku"), ("Pattern", "bedrock_on_demand"))
    latency = values[("InferenceLatency", haiku)]
    assert len(latency) == 2 and all(abs(v - 500) <= 5 for v in latency)  # 1 % bins
    assert values[("InferenceSuccess", haiku)] == [1, 1]
    sonnet = (("Target", "ondemand-sonnet"), ("Pattern", "bedrock_on_demand"))
    assert values[("InferenceSuccess", sonnet)] == 0  # one value: written as a number
    assert values[("InferenceCost", ())] == pytest.approx(2 * HAIKU_COST_USD)


def test_emf_namespace_is_configurable_and_checked(spawn: type[ServeProcess]) -> None:
    server = spawn([*SERVE, "--metrics", "emf", "--emf-namespace", "AWS/Mine"])
    assert server.finish() == 2
    assert "--emf-namespace: namespace must be non-empty and not start with 'AWS/'" in "".join(
        server.log
    )


# -- the flag --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "parsed"),
    [
        ([], ()),
        (["emf"], ("emf",)),
        (["prometheus,emf"], ("prometheus", "emf")),
        (["otlp", "EMF, otlp"], ("otlp", "emf")),
    ],
)
def test_metrics_flag_takes_repeats_and_commas(values: list[str], parsed: tuple[str, ...]) -> None:
    assert parse_metrics(values) == parsed


def test_an_unknown_exporter_names_the_value_and_the_choices() -> None:
    with pytest.raises(SidecarError) as caught:
        parse_metrics(["emf,statsd"])
    assert str(caught.value) == (
        "--metrics 'emf,statsd': unknown exporter 'statsd'; allowed: emf, otlp, prometheus "
        "(repeat the flag or separate them with commas)"
    )


def test_a_missing_exporter_package_names_the_install_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.prometheus", None)
    with pytest.raises(SidecarError, match=r"pip install 'mangaroute\[sidecar\]'"):
        SidecarMetrics(MetricsSettings(("prometheus",)), load_default_config().targets)


def test_no_metrics_means_no_observer() -> None:
    metrics = SidecarMetrics(MetricsSettings(), load_default_config().targets)
    assert metrics.observer is None
    metrics.close()


# -- the shared-state link's metrics go the same way ----------------------------------------


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A throw-away redis-server on a free loopback port (Debian's package, as in CI)."""
    server_bin = shutil.which("redis-server")
    if server_bin is None:
        pytest.fail("redis-server not found (apt-get install redis-server; ./scripts/test does)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [server_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(port))
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def test_the_shared_state_metrics_reach_the_scrape(
    spawn: type[ServeProcess], tmp_path: Path, redis_url: str
) -> None:
    config = tmp_path / "router.toml"
    config.write_text(
        default_config_text()
        + f'\n[shared]\nurl = "{redis_url}"\ndeployment = "metrics-test"\nsync_interval_ms = 50\n'
    )
    server = spawn(
        [*SERVE_TCP, "--config", str(config), "--metrics", "prometheus", "--prometheus-port", "0"]
    )
    server.address()
    found = re.search(r"(http://127\.0\.0\.1:\d+/metrics)", "".join(server.log))
    assert found, "".join(server.log)

    def connected() -> bool:
        samples = _scrape(found.group(1)).get("mangaroute_shared_connected", [])
        return _total(samples, deployment="metrics-test") == 1

    wait_for(connected)
    _stop(server)


def test_a_prometheus_host_beyond_loopback_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # 192.0.2.1 (TEST-NET-1, RFC 5737) is on no interface here: the warning comes, then the
    # bind fails; nothing listens beyond loopback
    settings = MetricsSettings(("prometheus",), prometheus_host="192.0.2.1", prometheus_port=0)
    refused = pytest.raises(SidecarError, match=r"--prometheus-host 192\.0\.2\.1 .*cannot listen")
    with caplog.at_level("WARNING", logger="mangaroute.sidecar"), refused:
        SidecarMetrics(settings, load_default_config().targets)
    assert "the Prometheus endpoint on 192.0.2.1 has no authentication" in caplog.text


def test_a_loopback_prometheus_host_is_not_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = MetricsSettings(("prometheus",), prometheus_port=0)
    with caplog.at_level("WARNING", logger="mangaroute.sidecar"):
        metrics = SidecarMetrics(settings, load_default_config().targets)
    try:
        assert metrics.prometheus_url is not None
        assert metrics.prometheus_url.startswith("http://127.0.0.1:")
        assert "no authentication" not in caplog.text
    finally:
        metrics.close()
