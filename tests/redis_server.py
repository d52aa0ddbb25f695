"""A throw-away ``redis-server`` on a free loopback port, for the tests and benchmarks.

Why our own server rather than the machine's: the tests of the shared quota stop the
store mid-run (the store going away) and start it again on the same port; nobody
else's keys live there. No persistence; it dies with its owner.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time

REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """``start()``, ``stop()`` and ``start()`` again on the same port; ``url(db)``."""

    def __init__(self, directory: str | None = None) -> None:
        self.port = free_port()
        self.dir = directory or tempfile.mkdtemp(prefix="wxpay-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 3) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> RedisServer:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None
