"""The daemon's metrics, defined in one place, on prometheus_client.

A :class:`MailbotMetrics` is built per process (the daemon builds one; tests
build their own) with its own registries, never prometheus_client's global one.
The daemon updates it::

    metrics.up.set(1)
    metrics.letters.labels(outcome="success").inc()
    metrics.outbox_backlog.set(pending)
    metrics.crl_age.watch(lambda: crl_ages(sessions, store))

and serves :meth:`MailbotMetrics.exposition` over HTTP
(:mod:`mailbot.daemon.metrics_server`) or writes the same metrics to a file
for node_exporter in timer mode (:mod:`mailbot.daemon.metrics_textfile`).

No label carries personal data: ``outcome`` is a verdict name, ``ca`` the name
an administrator gave a CA.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mailbot.app.states import NoVerdict
from mailbot.log import get_logger
from mailbot.regulation.decision import Outcome

log = get_logger(__name__)

C = TypeVar("C", bound=Collector)

# No ``*_created`` series: mailbot exported none before prometheus_client, and in
# timer mode they would only say when the last run started. Process-wide, but
# mailbot is the only user of the library in its process.
disable_created_metrics()  # type: ignore[no-untyped-call]

#: Upper bounds (seconds) from a letter's arrival to its reply leaving the outbox:
#: seconds normally; minutes with a slow SMTP relay; hours for CRL-deferred letters.
REPLY_LATENCY_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 24 * 3600)

#: ``mailbot_letters_total`` outcomes that are no verdict: a letter that crashed its
#: processing (it is retried) and the journal's non-verdict outcomes.
CRASHED = "crashed"
_OTHER_OUTCOMES = (CRASHED, *(value.value for value in NoVerdict))

CRL_AGE = "mailbot_crl_age_seconds"
CRL_AGE_HELP = (
    "Seconds since thisUpdate of the current cached CRL of each active CA; "
    "+Inf for a CA with no cached CRL."
)

#: Reads the CRL age of every active CA by name (see :func:`mailbot.app.crl_status.crl_ages`).
CrlAgeReader = Callable[[], dict[str, float]]


class CrlAgeCollector(Collector):
    """``mailbot_crl_age_seconds{ca}``, read from the database and CRL cache at scrape time.

    Computed when scraped, so the age keeps growing when refreshes stop
    (exactly what an alert needs), and every active CA has a series, including
    those with no CRL yet. Only an instance that works (holds the lease) reads:
    a standby's CRL cache is not refreshed and would raise false alarms.
    """

    def __init__(self) -> None:
        self._read: CrlAgeReader | None = None

    def watch(self, read: CrlAgeReader | None) -> None:
        """Report what *read* returns from now on; ``None`` reports no CA."""
        self._read = read

    def describe(self) -> Iterator[Metric]:
        """The family without samples: its name, for the registry's duplicate check."""
        yield GaugeMetricFamily(CRL_AGE, CRL_AGE_HELP, labels=["ca"])

    def collect(self) -> Iterator[Metric]:
        """The family with one sample per active CA."""
        family = GaugeMetricFamily(CRL_AGE, CRL_AGE_HELP, labels=["ca"])
        read = self._read
        if read is not None:
            try:
                ages = read()
            except Exception as exc:  # a scrape must not fail because the database is away
                log.warning("metrics.crl_age_unavailable", error=f"{type(exc).__name__}: {exc}")
                ages = {}
            for ca, age in sorted(ages.items()):
                family.add_metric([ca], age)
        yield family


class MailbotMetrics:
    """Every metric mailbot exports, in two registries built for this process.

    :attr:`own` holds mailbot's metrics only (what the timer's textfile gets:
    node_exporter exports its own ``process_*`` and would refuse duplicates);
    :attr:`registry` adds the library's process and platform collectors (what
    the HTTP endpoint serves).
    """

    def __init__(self) -> None:
        self.own = CollectorRegistry()
        self.registry = CollectorRegistry()
        self.up = self._add(Gauge("mailbot_up", _UP_HELP, registry=None))
        self.letters = self._add(
            Counter(
                "mailbot_letters_total",
                "Letters processed, by outcome (reply template key, no_reply, deferred, ...).",
                labelnames=("outcome",),
                registry=None,
            )
        )
        # Every outcome exists at 0 from the start, so rate() sees the first letter.
        for outcome in (*(value.value for value in Outcome), *_OTHER_OUTCOMES):
            self.letters.labels(outcome=outcome)
        self.reply_latency = self._add(
            Histogram(
                "mailbot_letter_reply_latency_seconds",
                "Seconds from a letter's arrival to its reply being accepted by SMTP.",
                buckets=REPLY_LATENCY_BUCKETS,
                registry=None,
            )
        )
        self.outbox_backlog = self._add(
            Gauge("mailbot_outbox_backlog", _BACKLOG_HELP, registry=None)
        )
        self.outbox_failed = self._add(
            Counter(
                "mailbot_outbox_failed_total",
                "Outbox messages given up on (sending failed for good).",
                registry=None,
            )
        )
        self.crl_age = self._add(CrlAgeCollector())
        self.imap_connected = self._add(Gauge("mailbot_imap_connected", _IMAP_HELP, registry=None))
        #: The counters a timer run carries over from the previous run's textfile.
        self.counters: tuple[Counter, ...] = (self.letters, self.outbox_failed)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def _add(self, collector: C) -> C:
        self.own.register(collector)
        self.registry.register(collector)
        return collector

    def exposition(self) -> bytes:
        """Everything the endpoint serves, in the text format (version 0.0.4)."""
        return generate_latest(self.registry)


_BACKLOG_HELP = "Replies and alerts waiting in the outbox."
_IMAP_HELP = "1 while the IMAP connection is up (timer mode: the run reached it), else 0."
_UP_HELP = "1 while this mailbot instance holds the lease and works; 0 in standby or stopped."
