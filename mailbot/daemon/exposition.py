"""Counters, gauges and histograms rendered in the Prometheus text format.

No prometheus_client: the three metric kinds mailbot needs fit in this module,
and the format is small and stable
(https://prometheus.io/docs/instrumenting/exposition_formats/). The metrics
themselves are defined in :mod:`mailbot.daemon.metrics`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

LabelKey = tuple[str, ...]
M = TypeVar("M", bound="Metric")

#: The Content-Type of the text exposition format, version 0.0.4.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def format_value(value: float) -> str:
    """A sample value as the format spells it: ``3``, ``0.25``, ``+Inf``, ``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 2**53:
        return str(int(value))  # counts read better without ".0"; both forms are valid
    return repr(float(value))


def escape_label_value(value: str) -> str:
    """Escape backslash, double quote and newline, as the format requires."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _render_labels(pairs: Iterable[tuple[str, str]]) -> str:
    body = ",".join(f'{name}="{escape_label_value(value)}"' for name, value in pairs)
    return f"{{{body}}}" if body else ""


class Metric:
    """Common part of every metric: name, help text, label names, a lock.

    Methods may be called from any thread (the CRL fetcher runs in threads);
    one lock per metric keeps a scrape consistent per series.
    """

    kind = "untyped"

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names: LabelKey = tuple(labels)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelKey:
        if set(labels) != set(self.label_names):
            raise ValueError(
                f"{self.name}: labels {sorted(labels)} given, {list(self.label_names)} expected"
            )
        return tuple(str(labels[name]) for name in self.label_names)

    def samples(self) -> Iterator[tuple[str, LabelKey, list[tuple[str, str]], float]]:
        """``(sample name, series key, extra labels, value)`` for every sample."""
        raise NotImplementedError  # pragma: no cover

    def render(self) -> str:
        """This metric's HELP, TYPE and sample lines."""
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for sample_name, key, extra, value in self.samples():
            pairs = [*zip(self.label_names, key, strict=True), *extra]
            lines.append(f"{sample_name}{_render_labels(pairs)} {format_value(value)}")
        return "\n".join(lines) + "\n"


class _ScalarMetric(Metric):
    """A counter or gauge: one number per label set."""

    def __init__(self, name: str, help_text: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, labels)
        # Without labels the series exists from the start (value 0), as in prometheus_client.
        self._values: dict[LabelKey, float] = {} if labels else {(): 0.0}

    def get(self, **labels: str) -> float:
        """The current value of one series (0 when it was never touched)."""
        key = self._key(labels)
        with self._lock:
            return self._values.get(key, 0.0)

    def samples(self) -> Iterator[tuple[str, LabelKey, list[tuple[str, str]], float]]:
        with self._lock:
            items = sorted(self._values.items())
        for key, value in items:
            yield self.name, key, [], value


class Counter(_ScalarMetric):
    """A number that only goes up (until the process restarts)."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add *amount* (not negative) to the series named by *labels*."""
        if amount < 0:
            raise ValueError(f"{self.name}: a counter cannot decrease")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def initialise(self, **labels: str) -> None:
        """Create a series at 0, so ``rate()`` sees the first increment."""
        key = self._key(labels)
        with self._lock:
            self._values.setdefault(key, 0.0)


class Gauge(_ScalarMetric):
    """A number that goes up and down."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        """Set the series named by *labels* to *value*."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        """Add *amount* (may be negative)."""
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels: str) -> None:
        """Subtract *amount*."""
        self.inc(-amount, **labels)

    def remove(self, **labels: str) -> None:
        """Drop a series (e.g. the CRL age of a CA that was deactivated)."""
        key = self._key(labels)
        with self._lock:
            self._values.pop(key, None)


@dataclass
class _HistogramSeries:
    counts: list[int]  # per bucket, not cumulative; the last one is +Inf
    total: float = 0.0
    count: int = 0


class Histogram(Metric):
    """Observations counted into fixed buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self, name: str, help_text: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> None:
        super().__init__(name, help_text, labels)
        bounds = sorted(float(b) for b in buckets if not math.isinf(b))
        if not bounds or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: buckets must be distinct and not empty")
        self.buckets: tuple[float, ...] = (*bounds, math.inf)
        self._series: dict[LabelKey, _HistogramSeries] = {} if labels else {(): self._new()}

    def _new(self) -> _HistogramSeries:
        return _HistogramSeries(counts=[0] * len(self.buckets))

    def observe(self, value: float, **labels: str) -> None:
        """Record one observation (e.g. seconds from arrival to reply)."""
        key = self._key(labels)
        with self._lock:
            series = self._series.setdefault(key, self._new())
            index = next(i for i, bound in enumerate(self.buckets) if value <= bound)
            series.counts[index] += 1
            series.total += value
            series.count += 1

    def samples(self) -> Iterator[tuple[str, LabelKey, list[tuple[str, str]], float]]:
        with self._lock:
            snapshot = [
                (key, list(s.counts), s.total, s.count) for key, s in sorted(self._series.items())
            ]
        for key, counts, total, count in snapshot:
            cumulative = 0
            for bound, bucket_count in zip(self.buckets, counts, strict=True):
                cumulative += bucket_count
                yield f"{self.name}_bucket", key, [("le", format_value(bound))], cumulative
            yield f"{self.name}_sum", key, [], total
            yield f"{self.name}_count", key, [], count


class Registry:
    """The metrics one endpoint serves, in registration order."""

    def __init__(self) -> None:
        self._metrics: dict[str, Metric] = {}

    def register(self, metric: M) -> M:
        """Add *metric*; names must be unique."""
        if metric.name in self._metrics:
            raise ValueError(f"metric {metric.name} is already registered")
        self._metrics[metric.name] = metric
        return metric

    def render(self) -> str:
        """The whole exposition, ready to send."""
        return "".join(metric.render() for metric in self._metrics.values())
