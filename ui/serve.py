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
          block: bool = True):
    """``rag chat``: load the index in a thread while Gradio starts, print the address when both are ready."""
    started = time.perf_counter()
    _check_port(host, port)
    _no_proxy_for_loopback()
    from rag.pipeline import is_default_index

    if not (Path(settings.index_dir) / "params.json").exists() and not is_default_index(settings):
        raise RagError(f"There is no index at {settings.index_dir}; build one with `rag index`.")
    engine = ChatEngine(settings, say)
    engine.allow_server_urls = _is_loopback(host)
    loader = threading.Thread(target=_load_quietly, args=(engine,), name="rag-load", daemon=True)
    loader.start()
    ui = load_ui()
    try:
        demo = ui.launch(engine, host, port, block=False)
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
    threading.Thread(target=engine.warm_model, name="rag-warm-model", daemon=True).start()
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
    try:
        engine.load()
    except BaseException:  # reported by engine.wait() in the main thread
        pass
