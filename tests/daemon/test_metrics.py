"""Metrics: what MailbotMetrics exposes, and scraping the endpoint over real HTTP."""

from __future__ import annotations

import asyncio
import http.client
import math
import socket
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mailbot.config.schema import MetricsConfig
from mailbot.daemon.metrics import MailbotMetrics
from mailbot.daemon.metrics_server import CONTENT_TYPE, MetricsServer, start_metrics_server
from testkit.ports import free_port
from tests.logs import _captured_logs  # noqa: F401  (autouse, as in its old folder)


def sample_lines(text: str) -> dict[str, float]:
    """``{'name{labels}': value}`` for every sample, parsed by prometheus_client."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def families(text: str) -> dict[str, str]:
    """``{family name: type}`` as a scraper reads them."""
    return {family.name: family.type for family in text_string_to_metric_families(text)}


def test_same_names_and_types_as_before_plus_process_metrics() -> None:
    text = MailbotMetrics().exposition().decode("utf-8")
    found = families(text)
    for name, kind in [
        ("mailbot_up", "gauge"),
        ("mailbot_letters", "counter"),  # the parser drops a counter's _total
        ("mailbot_letter_reply_latency_seconds", "histogram"),
        ("mailbot_outbox_backlog", "gauge"),
        ("mailbot_outbox_failed", "counter"),
        ("mailbot_crl_age_seconds", "gauge"),
        ("mailbot_imap_connected", "gauge"),
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("python_info", "gauge"),
    ]:
        assert found.get(name) == kind, name
    assert "# TYPE mailbot_letters_total counter" in text
    # No _created series: there were none before, and in timer mode they mean nothing.
    assert "_created" not in text


def test_own_registry_has_no_process_metrics() -> None:
    # The textfile goes to node_exporter, which exports its own process_* series.
    metrics = MailbotMetrics()
    own = {family.name for family in metrics.own.collect()}
    assert "mailbot_up" in own
    assert not {name for name in own if name.startswith(("process_", "python_"))}


def test_two_instances_do_not_share_values() -> None:
    first, second = MailbotMetrics(), MailbotMetrics()
    first.letters.labels(outcome="success").inc()
    samples = sample_lines(second.exposition().decode())
    assert samples['mailbot_letters_total{outcome="success"}'] == 0


def test_counter_with_labels_and_preinitialised_outcomes() -> None:
    metrics = MailbotMetrics()
    metrics.letters.labels(outcome="success").inc()
    metrics.letters.labels(outcome="success").inc()
    metrics.letters.labels(outcome="deferred").inc()
    samples = sample_lines(metrics.exposition().decode())
    assert samples['mailbot_letters_total{outcome="success"}'] == 2
    assert samples['mailbot_letters_total{outcome="deferred"}'] == 1
    # Every outcome exists at 0 from the start, so rate() sees the first letter;
    # the failures too, so increase() sees the first crash or poison letter.
    assert samples['mailbot_letters_total{outcome="unknown_ca"}'] == 0
    assert samples['mailbot_letters_total{outcome="crashed"}'] == 0
    assert samples['mailbot_letters_total{outcome="failed"}'] == 0


def test_crl_age_is_read_at_scrape_time_and_infinite_without_a_crl() -> None:
    metrics = MailbotMetrics()
    assert "mailbot_crl_age_seconds{" not in metrics.exposition().decode()  # standby: none
    ages = {"Минцифры": 7200.0, 'УЦ "Новый"': math.inf}
    metrics.crl_age.watch(lambda: dict(ages))
    text = metrics.exposition().decode()
    samples = sample_lines(text)
    assert samples['mailbot_crl_age_seconds{ca="Минцифры"}'] == 7200
    assert samples['mailbot_crl_age_seconds{ca="УЦ "Новый""}'] == math.inf
    assert 'mailbot_crl_age_seconds{ca="УЦ \\"Новый\\""} +Inf' in text  # escaped on the wire
    ages["Минцифры"] = 7260.0
    assert (
        sample_lines(metrics.exposition().decode())['mailbot_crl_age_seconds{ca="Минцифры"}']
        == 7260
    )
    metrics.crl_age.watch(None)
    assert "mailbot_crl_age_seconds{" not in metrics.exposition().decode()


def test_a_failing_crl_reader_does_not_fail_the_scrape() -> None:
    metrics = MailbotMetrics()

    def broken() -> dict[str, float]:
        raise OSError("database is away")

    metrics.crl_age.watch(broken)
    text = metrics.exposition().decode()
    assert "mailbot_up" in text
    assert "mailbot_crl_age_seconds{" not in text


def test_wrong_labels_are_a_programming_error() -> None:
    metrics = MailbotMetrics()
    with pytest.raises(ValueError, match="Incorrect label names"):
        metrics.letters.labels(result="success")
    with pytest.raises(ValueError, match="only be incremented by non-negative"):
        metrics.letters.labels(outcome="success").inc(-1)


# --- the endpoint, over real sockets ---------------------------------------


async def scrape(
    host: str, port: int, path: str = "/metrics", method: str = "GET"
) -> tuple[int, dict[str, str], str]:
    def run() -> tuple[int, dict[str, str], str]:
        connection = http.client.HTTPConnection(host, port, timeout=5)
        connection.request(method, path)
        response = connection.getresponse()
        body = response.read().decode("utf-8")
        connection.close()
        return response.status, dict(response.getheaders()), body

    return await asyncio.to_thread(run)


async def test_scrape_over_http() -> None:
    metrics = MailbotMetrics()
    metrics.up.set(1)
    metrics.imap_connected.set(1)
    metrics.outbox_backlog.set(3)
    metrics.reply_latency.observe(4.2)
    async with MetricsServer("127.0.0.1", 0, metrics) as server:
        (host, port) = server.addresses[0]
        status, headers, body = await scrape(host, port)
    assert status == 200
    assert headers["Content-Type"] == CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert int(headers["Content-Length"]) == len(body.encode("utf-8"))
    samples = sample_lines(body)
    assert samples["mailbot_up"] == 1
    assert samples["mailbot_imap_connected"] == 1
    assert samples["mailbot_outbox_backlog"] == 3
    assert samples['mailbot_letter_reply_latency_seconds_bucket{le="5.0"}'] == 1
    assert samples['mailbot_letter_reply_latency_seconds_bucket{le="+Inf"}'] == 1
    assert samples["mailbot_letter_reply_latency_seconds_count"] == 1
    assert samples["process_resident_memory_bytes"] > 0


async def test_query_string_is_ignored_and_head_has_no_body() -> None:
    async with MetricsServer("127.0.0.1", 0, MailbotMetrics()) as server:
        host, port = server.addresses[0]
        status, _headers, body = await scrape(host, port, "/metrics?name[]=mailbot_up")
        assert status == 200
        assert "mailbot_up" in body
        status, headers, body = await scrape(host, port, method="HEAD")
        assert (status, body) == (200, "")
        assert int(headers["Content-Length"]) > 100


@pytest.mark.parametrize("path", ["/", "/metrics/", "/metricsx", "/../metrics", "/favicon.ico"])
async def test_other_paths_are_404(path: str) -> None:
    async with MetricsServer("127.0.0.1", 0, MailbotMetrics()) as server:
        host, port = server.addresses[0]
        status, _headers, body = await scrape(host, port, path)
    assert status == 404
    assert "mailbot_up" not in body


async def test_other_methods_are_405() -> None:
    async with MetricsServer("127.0.0.1", 0, MailbotMetrics()) as server:
        host, port = server.addresses[0]
        status, headers, _body = await scrape(host, port, method="POST")
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"


async def test_garbage_and_silence_do_not_break_the_server() -> None:
    async with MetricsServer("127.0.0.1", 0, MailbotMetrics()) as server:
        host, port = server.addresses[0]
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"NONSENSE\r\n\r\n")
        await writer.drain()
        assert (await reader.read()).startswith(b"HTTP/1.1 400 ")
        writer.close()
        # A request head longer than the limit is dropped without an answer.
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20_000 + b"\r\n\r\n")
        await writer.drain()
        assert await reader.read() == b""
        writer.close()
        status, _headers, _body = await scrape(host, port)
        assert status == 200


async def test_binds_only_where_configured() -> None:
    port = free_port()
    config = MetricsConfig(enabled=True, listen=f"127.0.0.1:{port}")
    server = await start_metrics_server(config, MailbotMetrics())
    assert server is not None
    try:
        assert server.addresses == [("127.0.0.1", port)]
        status, _headers, _body = await scrape("127.0.0.1", port)
        assert status == 200
        # Another loopback address of the same port: nothing listens there.
        with pytest.raises(ConnectionRefusedError):
            await asyncio.to_thread(socket.create_connection, ("127.0.0.2", port), 2)
    finally:
        await server.close()
    with pytest.raises(ConnectionRefusedError):
        await asyncio.to_thread(socket.create_connection, ("127.0.0.1", port), 2)


async def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this kernel")
    try:
        async with MetricsServer("::1", 0, MailbotMetrics()) as server:
            host, port = server.addresses[0]
            status, _h, _b = await scrape(host, port)
    except OSError as exc:  # IPv6 disabled in the container
        pytest.skip(f"cannot bind ::1: {exc}")
    assert status == 200


async def test_disabled_starts_nothing() -> None:
    assert await start_metrics_server(MetricsConfig(enabled=False), MailbotMetrics()) is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1"])  # noqa: S104
def test_server_refuses_non_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        MetricsServer(host, 0, MailbotMetrics())


def test_scrape_is_fast_enough_to_not_matter() -> None:
    metrics = MailbotMetrics()
    metrics.crl_age.watch(lambda: {f"CA {index}": 60.0 for index in range(200)})
    start = time.perf_counter()
    metrics.exposition()
    assert time.perf_counter() - start < 0.1
