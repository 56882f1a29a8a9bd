"""The Milvus binary that milvus-lite ships, started as a real gRPC server on a free loopback port.

Why a server and not a ``.db`` URI: the client then talks TCP exactly as it would to a Milvus cluster, so the tests
exercise the code path of a real deployment. The process is started, polled until it answers, and stopped by its
PID (SIGINT, which the binary handles; SIGKILL if it does not exit).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

START_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(uri: str) -> bool:
    from pymilvus import MilvusClient

    from rag.index.milvus import GRPC_OPTIONS

    try:
        client = MilvusClient(uri, timeout=2, grpc_options=GRPC_OPTIONS)
        client.list_collections()
        client.close()
        return True
    except Exception:  # not listening yet
        return False


class MilvusServer:
    """A running ``milvus FILE.db 127.0.0.1:PORT`` process and its URI."""

    def __init__(self, folder: Path) -> None:
        import milvus_lite

        lib = Path(milvus_lite.__file__).resolve().parent / "lib"
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, LD_LIBRARY_PATH=f"{lib}:{os.environ.get('LD_LIBRARY_PATH', '')}")
        self.log = (folder / "milvus.log").open("wb")
        self.process = subprocess.Popen([str(lib / "milvus"), str(folder / "server.db"), f"127.0.0.1:{self.port}",
                                         "ERROR"], env=env, cwd=folder, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while not _answers(self.uri):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the Milvus server did not start (see {folder / 'milvus.log'})")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self.log.close()
