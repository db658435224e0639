"""``kasal`` in a subprocess of its own (with the test models: ``tests.kasal_cli``). A thread
copies its output to ``log`` and hands each line to ``on_line`` (no polling)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
KASAL = [sys.executable, "-m", "tests.kasal_cli"]


class KasalProcess:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args = args
        self.env = env
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None
        self.copier: threading.Thread | None = None
        self.ended_at = 0.0  # time.monotonic() when the process was seen to end

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*KASAL, *self.args], env=self.env, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        self.copier = threading.Thread(target=self._copy_output, args=(self.process,),
                                       daemon=True)
        self.copier.start()

    def on_line(self, line: bytes) -> None:
        """One line the process wrote (on the copying thread)."""

    def on_exit(self) -> None:
        """The process ended (on the copying thread)."""

    def _copy_output(self, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        with self.log.open("ab") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                self.on_line(line)
        process.wait()
        self.ended_at = time.monotonic()
        self.on_exit()

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None and \
            self.copier is not None and not self.copier.is_alive()

    def output(self) -> str:
        """Everything the process wrote, once it ended."""
        if self.copier is not None:
            self.copier.join(10)
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self, grace: float = 30.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
