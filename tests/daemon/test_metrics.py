"""Metrics: the exposition format, and scraping the endpoint over real HTTP."""

from __future__ import annotations

import asyncio
import http.client
import math
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from mailbot.config.schema import MetricsConfig
from mailbot.daemon.exposition import Counter, Gauge, Histogram, Registry, format_value
from mailbot.daemon.metrics import CONTENT_TYPE, MailbotMetrics, MetricsServer, start_metrics_server
from testkit.ports import free_port
from tests.logs import _captured_logs  # noqa: F401  (autouse, as in its old folder)


def sample_lines(text: str) -> dict[str, str]:
    """``{'name{labels}': 'value'}`` for every sample line."""
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            series, value = line.rsplit(" ", 1)
            samples[series] = value
    return samples


def test_help_and_type_precede_the_samples() -> None:
    metrics = MailbotMetrics()
    text = metrics.render()
    assert text.endswith("\n")
    for name, kind in [
        ("mailbot_up", "gauge"),
        ("mailbot_letters_total", "counter"),
        ("mailbot_letter_reply_latency_seconds", "histogram"),
        ("mailbot_outbox_backlog", "gauge"),
        ("mailbot_crl_age_seconds", "gauge"),
        ("mailbot_imap_connected", "gauge"),
    ]:
        lines = text.splitlines()
        help_at = lines.index(next(x for x in lines if x.startswith(f"# HELP {name} ")))
        assert lines[help_at + 1] == f"# TYPE {name} {kind}"


def test_counter_with_labels_and_preinitialised_outcomes() -> None:
    metrics = MailbotMetrics()
    metrics.letters.inc(outcome="success")
    metrics.letters.inc(outcome="success")
    metrics.letters.inc(outcome="deferred")
    samples = sample_lines(metrics.render())
    assert samples['mailbot_letters_total{outcome="success"}'] == "2"
    assert samples['mailbot_letters_total{outcome="deferred"}'] == "1"
    # Every reply outcome exists at 0 from the start, so rate() sees the first letter.
    assert samples['mailbot_letters_total{outcome="unknown_ca"}'] == "0"
    assert metrics.letters.get(outcome="success") == 2


def test_label_values_are_escaped() -> None:
    gauge = Gauge("g", "help", labels=("ca",))
    gauge.set(1, ca='УЦ "Сертум"\\n\nнов')
    assert gauge.render().splitlines()[-1] == 'g{ca="УЦ \\"Сертум\\"\\\\n\\nнов"} 1'


def test_help_text_is_escaped() -> None:
    assert Counter("c_total", "a\\b\nc").render().splitlines()[0] == "# HELP c_total a\\\\b\\nc"


def test_histogram_buckets_are_cumulative_with_inf_sum_and_count() -> None:
    histogram = Histogram("h_seconds", "latency", buckets=(1, 0.5, 10))
    for value in (0.2, 0.5, 3, 50):
        histogram.observe(value)
    lines = histogram.render().splitlines()
    assert lines[2:] == [
        'h_seconds_bucket{le="0.5"} 2',
        'h_seconds_bucket{le="1"} 2',
        'h_seconds_bucket{le="10"} 3',
        'h_seconds_bucket{le="+Inf"} 4',
        "h_seconds_sum 53.7",
        "h_seconds_count 4",
    ]


def test_histogram_with_labels_puts_le_last() -> None:
    histogram = Histogram("h", "x", buckets=(1,), labels=("kind",))
    histogram.observe(2, kind="reply")
    assert 'h_bucket{kind="reply",le="+Inf"} 1' in histogram.render()
    assert 'h_sum{kind="reply"} 2' in histogram.render()


def test_crl_age_grows_with_time() -> None:
    metrics = MailbotMetrics()
    metrics.crl_age.mark(datetime.now(UTC) - timedelta(hours=2), ca="Минцифры")
    age = float(sample_lines(metrics.render())['mailbot_crl_age_seconds{ca="Минцифры"}'])
    assert 7190 < age < 7300
    metrics.crl_age.remove(ca="Минцифры")
    assert "mailbot_crl_age_seconds{" not in metrics.render()


def test_wrong_labels_are_a_programming_error() -> None:
    metrics = MailbotMetrics()
    with pytest.raises(ValueError, match="outcome"):
        metrics.letters.inc(result="success")
    with pytest.raises(ValueError, match="cannot decrease"):
        metrics.letters.inc(-1, outcome="success")
    with pytest.raises(ValueError, match="already registered"):
        metrics.registry.register(Gauge("mailbot_up", "again"))


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3"), (0.25, "0.25"), (math.inf, "+Inf"), (-math.inf, "-Inf"), (math.nan, "NaN")],
)
def test_values(value: float, text: str) -> None:
    assert format_value(value) == text


def test_threads_do_not_lose_increments() -> None:
    import threading

    counter = Counter("t_total", "x")

    def work() -> None:
        for _ in range(10_000):
            counter.inc()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.get() == 40_000


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
    assert headers["Content-Type"] == CONTENT_TYPE
    assert int(headers["Content-Length"]) == len(body.encode("utf-8"))
    samples = sample_lines(body)
    assert samples["mailbot_up"] == "1"
    assert samples["mailbot_imap_connected"] == "1"
    assert samples["mailbot_outbox_backlog"] == "3"
    assert samples['mailbot_letter_reply_latency_seconds_bucket{le="5"}'] == "1"
    assert samples['mailbot_letter_reply_latency_seconds_bucket{le="+Inf"}'] == "1"
    assert samples["mailbot_letter_reply_latency_seconds_count"] == "1"


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
        MetricsServer(host, 0, Registry())


def test_scrape_is_fast_enough_to_not_matter() -> None:
    metrics = MailbotMetrics()
    for index in range(200):
        metrics.crl_age.mark(time.time(), ca=f"CA {index}")
    start = time.perf_counter()
    metrics.render()
    assert time.perf_counter() - start < 0.1
