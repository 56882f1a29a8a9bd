"""Starting the chat: check the port, load the index in a thread while Gradio starts, say when both are ready.

Kept apart from ``ui.chat`` (the engine, no Gradio) and ``ui.app`` (the Gradio wiring) so that the engine can be
used and tested without Gradio and the CLI needs only this one entry point.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from pathlib import Path
from typing import Callable

from rag.errors import RagError
from rag.settings import Settings
from ui.chat import ChatEngine

def load_ui():
    """The Gradio app module ``ui.app``; a clear message when Gradio is not installed."""
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise RagError("The chat needs Gradio; install it with: pip install -e '.[chat]'") from None
    from ui import app

    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 7860, say: Callable[[str], None] = print,
          block: bool = True, source: Path | None = None):
    """``rag chat``: load the index in a thread while Gradio starts, print the address when both are ready.

    A missing index is built from ``source`` (default: the seeds) while the page already shows its progress."""
    started = time.perf_counter()
    _check_port(host, port)
    _no_proxy_for_loopback()
    source = Path(source or settings.seeds_dir)
    build = not (Path(settings.index_dir) / "params.json").exists()
    if build and not source.is_dir():
        raise RagError(f"There is no index at {settings.index_dir} and no articles folder at {source} to build it "
                       f"from; pass one with --from DIR.")
    engine = ChatEngine(settings, say, source=source)
    engine.models.allow_server_urls = _is_loopback(host)
    loader = threading.Thread(target=_load_quietly, args=(engine,), name="rag-load", daemon=True)
    if not build:  # loading takes seconds: in parallel with Gradio's start
        loader.start()
    ui = load_ui()
    try:
        demo = ui.launch(engine, host, port, block=False)
        if build:  # building takes a minute: the page comes first (on two cores it would wait), showing the progress
            loader.start()
    except OSError as err:
        raise RagError(f"The chat cannot listen on {host}:{port} ({err}); choose another --port.") from None
    try:
        engine.wait(timeout=600)
        status = engine.status()
    except BaseException:
        with contextlib.redirect_stdout(io.StringIO()):  # Gradio prints "Closing server …"
            demo.close()
        raise
    say(f"Chat ready at http://{host}:{port} after {time.perf_counter() - started:.1f} s: {status.articles} articles, "
        f"{status.passages} passages, embedding model {status.embedder}, answers: {status.answerer}.")
    threading.Thread(target=engine.warm_caches, name="rag-warm", daemon=True).start()
    threading.Thread(target=engine.models.warm_up, name="rag-warm-model", daemon=True).start()
    if block:
        try:
            demo.block_thread()
        finally:
            demo.close()
    return demo, engine


def _no_proxy_for_loopback() -> None:
    """Gradio checks its own address at start-up with httpx, which honours ``HTTP_PROXY``/``HTTPS_PROXY``: behind a
    newsroom proxy that check went to the proxy and the app died (or hung). Loopback never goes through a proxy."""
    for key in ("NO_PROXY", "no_proxy"):
        hosts = [h.strip() for h in os.environ.get(key, "").split(",") if h.strip()]
        os.environ[key] = ",".join(hosts + [h for h in ("localhost", "127.0.0.1", "::1") if h not in hosts])


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port(host: str, port: int) -> None:
    """Fail in one sentence, before loading anything, when the port is taken."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise RagError(f"The host name {host!r} cannot be resolved; use e.g. --host 127.0.0.1.") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does: TIME_WAIT is no conflict
        try:
            sock.bind(address)
        except OSError:
            raise RagError(f"Port {port} on {host} is in use (or not allowed); choose another with --port.") from None


def _load_quietly(engine: ChatEngine) -> None:
    """Load (or build) at a lower CPU priority than the web server's threads, so that on a small machine a first
    build does not delay the page's answers to clicks (the embedder's worker threads inherit the priority)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 4)
    try:
        engine.load()
    except BaseException:  # reported by engine.wait() in the main thread
        pass
