"""A real `creditdesk serve` subprocess: started, SIGKILLed and restarted on the same database.

The reliability tests talk to it over real HTTP, as users do; nothing is shared with the test
process but the database.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """`creditdesk serve --database-url URL` on a loopback port; `kill()` is SIGKILL, nothing graceful."""

    def __init__(self, database_url: str, log_path: Path, *, env: dict[str, str] | None = None,
                 port: int | None = None):
        self.database_url = database_url
        self.log_path = log_path
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.env.pop("CREDITDESK_DATABASE_URL", None)
        # `creditdesk serve` refuses to start without a session key of its own; a throwaway one does here.
        self.env.setdefault("CREDITDESK_SECRET_KEY", secrets.token_urlsafe(48))
        self.process: subprocess.Popen | None = None
        self.starts = 0
        self.kills = 0

    def start(self, timeout: float = 60.0) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        log = open(self.log_path, "ab")
        log.write(f"\n--- start {self.starts + 1} ---\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "creditdesk.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--database-url", self.database_url, "--no-access-log"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env,
            start_new_session=True)
        log.close()
        self.starts += 1
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"creditdesk serve exited with {self.process.returncode}; see {self.log_path}:\n"
                                   + self.log_tail())
            try:
                if httpx.get(self.base_url + "/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"creditdesk serve not ready after {timeout}s; see {self.log_path}:\n" + self.log_tail())

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no flushing, in-flight requests cut off mid-transaction."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.kills += 1

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> LiveServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
