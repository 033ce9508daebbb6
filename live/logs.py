"""One log line per event on stderr (journald reads it): plain text, or JSON lines on request."""

import json
import logging
import sys
import time

LOGGER = "fc.live"


class JsonLines(logging.Formatter):
    """{"time": ..., "level": ..., "event": ..., "message": ..., <fields>} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "event": getattr(record, "event", "log"),
            "message": record.getMessage(),
        }
        out.update(getattr(record, "fields", {}))
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(out, default=str)


def setup_logging(json_lines: bool = False, level: int = logging.INFO) -> logging.Logger:
    """Route the service's logger to stderr, replacing any handler a previous call added."""
    logger = logging.getLogger(LOGGER)
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    plain = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S%z")
    handler.setFormatter(JsonLines() if json_lines else plain)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


def log_event(level: int, event: str, message: str, **fields) -> None:
    """Log `message` (plain) with `fields` attached (JSON lines show them as keys)."""
    logging.getLogger(LOGGER).log(level, message, extra={"event": event, "fields": fields})
