"""Logging: one format for every logger, to stderr and (with LOG_DIR) to a rotating file.

Every line carries the correlation id of the request or run it belongs to (the context
variable the API, the bus and the runner set: ``commands.context.current_correlation_id``).
``LOG_FORMAT=json`` writes one JSON object a line (time, level, logger, message,
correlation_id, and the traceback when there is one), for log collectors.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
from pathlib import Path
from typing import IO, Literal

from commands.context import current_correlation_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s]: %(message)s"
LogFormat = Literal["text", "json"]


class CorrelationFilter(logging.Filter):
    """Stamps each record with the correlation id of the work in hand ("-" outside any)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = current_correlation_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", "-"),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(
    level: str,
    log_dir: Path | None,
    sql_debug: bool = False,
    log_format: LogFormat = "text",
    stream: IO[str] | None = None,
) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "kasal.log", maxBytes=10_000_000, backupCount=5
            )
        )
    formatter = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
    for handler in handlers:
        handler.addFilter(CorrelationFilter())
        handler.setFormatter(formatter)
    logging.basicConfig(level=level.upper(), handlers=handlers, force=True)
    if sql_debug:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
