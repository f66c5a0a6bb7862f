"""Structured JSON logs. Only identifiers and outcomes are logged: never ticket text, names or phone numbers."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from classifier.normalize import mask_personal_numbers

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


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
        # last line of defence: whatever slipped into a message, personal numbers are masked
        return mask_personal_numbers(json.dumps(entry, ensure_ascii=False, default=str), "[号码]")


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # a line per scheduled run every few seconds drowns what matters; failures still log at WARNING and above
    logging.getLogger("apscheduler").setLevel(max(logging.WARNING, root.level))
