"""Structured JSON logs. Only identifiers and outcomes are logged: never ticket text, names or phone numbers."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from service.redaction import mask_numbers

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
# query parameters whose values say nothing about a person; every other value (q, api_key, …) is not logged
SAFE_QUERY_KEYS = frozenset(
    {"state", "office", "category", "overdue", "page", "page_size", "format", "date", "start", "end", "status"}
    | {"service_code", "limit", "cursor", "grid", "due_before"}
)


def scrub_query(path: str) -> str:
    """A logged request path: values of search terms and other free parameters replaced by …"""
    parts = urlsplit(path)
    if not parts.query:
        return path
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    shown = "&".join(f"{k}={v if k in SAFE_QUERY_KEYS else '…'}" for k, v in pairs)
    return f"{parts.path}?{shown}"


class AccessLogScrubber(logging.Filter):
    """uvicorn's access line carries the full URL: search terms (names, phone numbers) must not reach the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            args = list(record.args)
            args[2] = scrub_query(str(args[2]))
            record.args = tuple(args)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # last line of defence: whatever slipped into a text, personal numbers are masked (ids and counts, which
        # are numbers rather than text, stay readable)
        masked = {k: mask_numbers(v) if isinstance(v, str) else v for k, v in entry.items()}
        return json.dumps(masked, ensure_ascii=False, default=lambda v: mask_numbers(str(v)))


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(AccessLogScrubber())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # a line per scheduled run every few seconds drowns what matters; failures still log at WARNING and above
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
