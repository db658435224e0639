"""One embedded Kasal process with processors per data dir.

Two of them on one data dir would both resume the same unfinished executions (each run
paid for twice) and the second cannot open the embedded Qdrant folder anyway. A process
that runs executions or the vector index holds an exclusive ``flock`` on
``DATA_DIR/kasal.lock`` (the kernel releases it when the process dies, however it dies); the
file names the holder, so the second process stops with one line that says what to do.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO


class DataDirInUse(RuntimeError):
    """Another Kasal process runs on this data dir; the message names it."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / "kasal.lock"
        self.file: IO[str] | None = None

    def acquire(self) -> None:
        file = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another Kasal process"
            file.close()
            raise DataDirInUse(
                f"{self.data_dir} is in use by {holder}: stop it first, or give this command "
                "its own --data-dir"
            ) from None
        file.truncate(0)
        command = f"kasal {sys.argv[1]}" if len(sys.argv) > 1 else "kasal"
        file.write(f"{command} (pid {os.getpid()})\n")
        file.flush()
        self.file = file

    def release(self) -> None:
        if self.file is not None:
            fcntl.flock(self.file, fcntl.LOCK_UN)
            self.file.close()
            self.file = None
