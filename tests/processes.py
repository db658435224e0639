"""``kasal`` in a subprocess of its own (with the test models: ``tests.kasal_cli``). A thread
copies its output to ``log`` and hands each line to ``on_line`` (no polling)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server(KasalProcess):
    """``kasal serve`` in a subprocess; ``start`` returns once it said it is ready."""

    def __init__(self, data_dir: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        super().__init__(["serve", "--port", str(self.port)],
                         {**os.environ, **(env or {}), "KASAL_DATA_DIR": str(data_dir)}, log)
        self.ready = threading.Event()

    def start(self) -> None:
        self.ready = threading.Event()
        super().start()
        assert self.process is not None
        if not self.ready.wait(60) or self.process.poll() is not None:
            raise AssertionError(f"kasal serve did not start: {self.log.read_text()[-2000:]}")

    def on_line(self, line: bytes) -> None:
        if b"Uvicorn running on" in line:  # bound: startup completes before
            self.ready.set()

    def on_exit(self) -> None:
        self.ready.set()  # the process ended: start() reports it

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> httpx.Client:
        key = (self.data_dir / "admin.key").read_text().strip()
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=60,
                            headers={"Authorization": f"Bearer {key}"})
