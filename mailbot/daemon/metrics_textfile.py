"""Timer mode: the metrics of a ``mailbot run --once`` in a file for node_exporter.

A run lives seconds, too short to be scraped, so at its end it writes its
metrics where ``[metrics] textfile`` says; node_exporter's textfile collector
serves them (and ``node_textfile_mtime_seconds`` tells when the last run wrote).

The file is replaced atomically (temporary file, fsync, rename): node_exporter
never reads half of it. It is ``0644`` whatever the umask (``UMask=0027`` in the
unit) so that node_exporter, another user, can read it; it holds no personal
data (see :mod:`mailbot.daemon.metrics`). Only mailbot's own metrics go in:
node_exporter exports its own ``process_*`` series and refuses duplicates.

Counters carry on from the previous run's file (:func:`carry_over`): each run
starts at 0, and two runs with 3 letters each would otherwise read as no
increase at all to ``rate()``/``increase()``.
"""

from __future__ import annotations

import math
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mailbot.daemon.metrics import MailbotMetrics
from mailbot.files import write_atomically
from mailbot.log import get_logger

log = get_logger(__name__)

#: Readable by node_exporter (another user); the content is not personal data.
TEXTFILE_MODE = 0o644


def write_textfile(metrics: MailbotMetrics, path: Path) -> None:
    """Replace *path* with mailbot's own metrics, atomically; the folder must exist.

    The folder belongs to node_exporter: it is never created here (it would be
    created private, unreadable to node_exporter).
    """
    if not path.parent.is_dir():
        raise FileNotFoundError(f"metrics.textfile: folder {path.parent} does not exist")
    write_atomically(path, generate_latest(metrics.own), mode=TEXTFILE_MODE)


def carry_over(metrics: MailbotMetrics, path: Path) -> None:
    """Start this run's counters from the values in the previous run's file.

    A missing file starts from 0; an unreadable or foreign one too (with a warning):
    a counter that resets is what ``rate()`` copes with, a run that fails is not.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("metrics.textfile_unreadable", path=str(path), error=str(exc))
        return
    counters = {
        family.name: counter for counter in metrics.counters for family in counter.describe()
    }
    try:
        families = list(text_string_to_metric_families(text))
    except ValueError as exc:
        log.warning("metrics.textfile_unreadable", path=str(path), error=str(exc))
        return
    for family in families:
        counter = counters.get(family.name)
        if counter is None or family.type != "counter":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total") or not math.isfinite(sample.value):
                continue
            if sample.value <= 0:
                continue
            try:
                child = counter.labels(**sample.labels) if sample.labels else counter
                child.inc(sample.value)
            except ValueError:  # labels of another version of mailbot: start that series anew
                continue
