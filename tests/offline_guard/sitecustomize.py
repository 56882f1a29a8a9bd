"""Loaded by every Python process of the offline test: refuses and records any non-loopback connection."""

import ipaddress
import os
import socket

_LOG = os.environ["RAG_OFFLINE_LOG"]
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _allowed(address) -> bool:
    if isinstance(address, (str, bytes)):
        return True  # a Unix socket never leaves the machine
    host = address[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _guard(method):
    def guarded(self, address, *args):
        if not _allowed(address):
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()} blocked {address!r}\n")
            raise OSError(101, f"network blocked by the offline test: {address!r}")
        return method(self, address, *args)

    return guarded


socket.socket.connect = _guard(_connect)
socket.socket.connect_ex = _guard(_connect_ex)
