"""docs/monitoring: every metric the alert rules and the dashboard use is one mailbot exposes.

The names come from a real registry built by :class:`MailbotMetrics` (with a CRL
age, so that family has a sample), suffixes included (``_total``, ``_bucket``,
``_count``, ``_sum``). A renamed metric breaks this test, not a silent alert.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from mailbot.daemon.metrics import MailbotMetrics

MONITORING = Path(__file__).resolve().parents[2] / "docs" / "monitoring"

#: Metrics from elsewhere: Prometheus's scrape health, node_exporter's textfile collector.
EXTERNAL = {"up", "node_textfile_mtime_seconds", "node_textfile_scrape_error"}
#: What a name in an expression may start with to count as a metric of ours.
OURS = ("mailbot_", "process_", "python_")

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"(?<![\w:$])([a-zA-Z_:][a-zA-Z0-9_:]*)")


def exposed_names() -> set[str]:
    metrics = MailbotMetrics()
    metrics.crl_age.watch(lambda: {"УЦ": 1.0})
    names = set()
    for family in metrics.registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
    return names


def metric_names(expression: str) -> set[str]:
    """Names in a PromQL expression that look like metrics (ours or known external ones)."""
    bare = _STRING.sub('""', expression)
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range selectors: [5m], [$__rate_interval]
    found = set(_NAME.findall(bare))
    return {name for name in found if name.startswith(OURS) or name in EXTERNAL}


def rule_expressions() -> list[tuple[str, str]]:
    document = yaml.safe_load((MONITORING / "prometheus-rules.yml").read_text(encoding="utf-8"))
    return [
        (rule.get("alert") or rule.get("record"), rule["expr"])
        for group in document["groups"]
        for rule in group["rules"]
    ]


def dashboard_expressions() -> list[tuple[str, str]]:
    document: dict[str, Any] = json.loads(
        (MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8")
    )
    return [
        (panel["title"], target["expr"])
        for panel in document["panels"]
        for target in panel.get("targets", [])
    ]


def test_the_exposed_names_include_suffixes() -> None:
    names = exposed_names()
    assert {"mailbot_letters_total", "mailbot_letter_reply_latency_seconds_bucket"} <= names
    assert {"mailbot_letter_reply_latency_seconds_count", "process_cpu_seconds_total"} <= names
    assert metric_names('rate(mailbot_letters_total{outcome=~"a|b"}[5m]) > 0 and up') == {
        "mailbot_letters_total",
        "up",
    }


def test_rules_use_only_exposed_metrics() -> None:
    names = exposed_names()
    rules = rule_expressions()
    assert len(rules) >= 8
    for alert, expression in rules:
        used = metric_names(expression)
        assert used, f"{alert}: no metric in {expression!r}"
        assert used <= names | EXTERNAL, f"{alert}: unknown {sorted(used - names - EXTERNAL)}"


def test_rules_cover_what_the_metrics_support() -> None:
    used = set().union(*(metric_names(e) for _a, e in rule_expressions()))
    for name in (
        "up",
        "mailbot_up",
        "mailbot_imap_connected",
        "mailbot_letters_total",
        "mailbot_outbox_backlog",
        "mailbot_outbox_failed_total",
        "mailbot_crl_age_seconds",
        "node_textfile_mtime_seconds",
    ):
        assert name in used, name


def test_the_crl_alert_fires_for_a_ca_without_a_crl() -> None:
    # A CA without a cached CRL is +Inf: a plain "older than" comparison catches it,
    # as long as nothing in the expression filters +Inf out.
    (expression,) = [e for a, e in rule_expressions() if a == "MailbotCrlStale"]
    assert re.fullmatch(r"mailbot_crl_age_seconds > [\d\s*]+", expression.strip())


def test_dashboard_uses_only_exposed_metrics() -> None:
    names = exposed_names()
    targets = dashboard_expressions()
    assert len(targets) >= 10
    for title, expression in targets:
        used = metric_names(expression)
        assert used, f"{title}: no metric in {expression!r}"
        assert used <= names | EXTERNAL, f"{title}: unknown {sorted(used - names - EXTERNAL)}"
