"""A token check in front of the real Milvus server, answering as Milvus does with authorization enabled.

Why not the server itself: the Milvus binary that milvus-lite ships (the only Milvus that installs here) has no
authentication: it takes no configuration file (its arguments are the data file, the address, the log level), it
accepts any token, and its user-management calls answer UNIMPLEMENTED; Milvus Lite lists RBAC among its limits. A
Milvus standalone or cluster with ``common.security.authorizationEnabled: true`` checks the ``authorization`` header
of every call (base64 of ``user:password`` or of an API key) and refuses a missing or wrong one with the gRPC status
UNAUTHENTICATED and the details below (milvus-io/milvus#37714, milvus-io/pymilvus#2206). This front does exactly
that and forwards every call it lets through, byte for byte, to the real server, so the client under test talks to
a real server over TCP and gets pymilvus's own exception for a refused token.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor

import grpc

from milvus_server import free_port

WRONG = "auth check failure, please check username and password are correct"
MISSING = "missing authorization in header"


class _Forward(grpc.GenericRpcHandler):
    def __init__(self, upstream: grpc.Channel, token: str) -> None:
        self.upstream = upstream
        self.token = token

    def service(self, details):
        method = details.method

        def call(request: bytes, context: grpc.ServicerContext) -> bytes:
            metadata = [(k, v) for k, v in context.invocation_metadata()
                        if not k.startswith(":") and k not in ("user-agent", "authorization")]
            given = dict(context.invocation_metadata()).get("authorization")
            if given is None:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, MISSING)
            if base64.b64decode(given).decode("utf-8", "replace") != self.token:
                context.abort(grpc.StatusCode.UNAUTHENTICATED, WRONG)
            remaining = context.time_remaining()  # about 2**63 ns when the caller set no deadline
            try:
                return self.upstream.unary_unary(method)(request, metadata=metadata,
                                                        timeout=remaining if remaining < 3600 else None)
            except grpc.RpcError as err:
                context.abort(err.code(), err.details() or "")

        return grpc.unary_unary_rpc_method_handler(call)


class AuthFront:
    """``http://127.0.0.1:PORT`` that accepts only ``token`` and forwards to the Milvus server at ``target``."""

    def __init__(self, target: str, token: str) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.upstream = grpc.insecure_channel(target)
        self.server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers((_Forward(self.upstream, token),))
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.server.start()

    def stop(self) -> None:
        self.server.stop(grace=None).wait(10)
        self.upstream.close()
