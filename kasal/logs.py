"""Logging: one format, to stderr and (with LOG_DIR) to a rotating file."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(level: str, log_dir: Path | None, sql_debug: bool = False) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "kasal.log", maxBytes=10_000_000, backupCount=5
            )
        )
    logging.basicConfig(level=level.upper(), format=FORMAT, handlers=handlers, force=True)
    if sql_debug:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
