"""Structured logs: one JSON object a line (time, level, component, message, and the sensor
and request id when a record carries them), chosen by ``PLANTCAST_LOG_FORMAT=json``.

``plantcast serve`` sets the variable and ``PLANTCAST_COMPONENT`` for each process it starts,
and wraps whatever a component prints that is not already JSON (``line_record``), so the
whole plant logs one format that a log shipper can parse.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["COMPONENT_ENV", "FORMAT_ENV", "JsonFormatter", "line_record", "setup"]

FORMAT_ENV = "PLANTCAST_LOG_FORMAT"  # json or text
COMPONENT_ENV = "PLANTCAST_COMPONENT"  # the name serve gave this process
FIELDS = ("sensor", "request_id", "job", "pid")  # extras a record may carry (extra=...)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line."""

    def __init__(self, component: str | None = None) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _now(),
            "level": record.levelname.lower(),
            "component": getattr(record, "component", None) or self.component,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for field in FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup(verbose: bool = False) -> None:
    """Log to stderr: JSON lines when ``PLANTCAST_LOG_FORMAT=json`` (at INFO: a service's
    log is read later, not watched), else the plain text format (INFO with ``verbose``)."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get(FORMAT_ENV, "text").lower() == "json":
        handler.setFormatter(JsonFormatter(os.environ.get(COMPONENT_ENV)))
        level = logging.INFO
        logging.captureWarnings(True)  # a warning is a record too, not a bare line
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
        level = logging.INFO if verbose else logging.WARNING
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # a line per run is ours to say


def line_record(component: str, line: str, level: str = "info") -> str:
    """A line a component printed, as a JSON log line: a JSON object gains the component (if
    it lacks one), any other text becomes the message."""
    text = line.rstrip("\n")
    if text.startswith("{"):
        try:
            entry = json.loads(text)
        except ValueError:
            entry = None
        if isinstance(entry, dict):
            entry.setdefault("component", component)
            return json.dumps(entry, default=str)
    return json.dumps({"ts": _now(), "level": level, "component": component, "msg": text})
