"""One real `rag chat` process for the app tests (test_ui.py, test_browser.py), started once per test session.

The app runs on a free loopback port on a private copy of the session's real seeds index (default embedder, FAISS, BM25),
so uploads made by tests change neither the shared index nor the project's.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY_LINE = "Chat ready at"


@dataclass
class RunningApp:
    url: str
    process: subprocess.Popen
    index_dir: Path
    log_path: Path
    ready_seconds: float

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


_app: RunningApp | None = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(index_source: Path, workdir: Path, timeout: float = 90.0, env: dict | None = None) -> RunningApp:
    """Copy the index into ``workdir`` and run `rag chat` on it (``env``: extra environment, e.g. a proxy);
    returns when the app says it is ready."""
    index_dir = workdir / "seeds"
    shutil.copytree(index_source, index_dir)
    port = free_port()
    log_path = workdir / "chat.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", "NO_PROXY": "127.0.0.1,localhost",
           **(env or {})}
    command = [sys.executable, "-m", "rag.cli", "chat", "--host", "127.0.0.1", "--port", str(port),
               "--index-dir", str(index_dir)]
    started = time.perf_counter()
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL)
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"rag chat exited with {process.returncode}:\n{log_path.read_text()}")
        if READY_LINE in log_path.read_text(encoding="utf-8", errors="replace"):
            return RunningApp(f"http://127.0.0.1:{port}/", process, index_dir, log_path, time.perf_counter() - started)
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"rag chat was not ready after {timeout} s:\n{log_path.read_text()}")


def stop() -> None:
    global _app
    if _app is not None and _app.process.poll() is None:
        _app.process.terminate()
        try:
            _app.process.wait(10)
        except subprocess.TimeoutExpired:
            _app.process.kill()
    _app = None


def shared(real_seeds_index, tmp_path_factory) -> RunningApp:
    """The session's app (started on first use, stopped when the test process ends)."""
    global _app
    if _app is None or _app.process.poll() is not None:
        settings = real_seeds_index[0]
        _app = start(Path(settings.index_dir), tmp_path_factory.mktemp("chat-app"))
        atexit.register(stop)
    return _app
