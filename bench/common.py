"""What several benchmarks share: a JWKS endpoint for the bench's own signing key, and percentiles."""

from __future__ import annotations

import json
import statistics
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from maille_devstack.processes import free_port


def serve_jwks(jwks: dict) -> int:
    """Serve `jwks` over HTTP on a free port (in a thread); the port."""
    body = json.dumps(jwks).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server.server_address[1]


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (q in 0 – 100, to a tenth)."""
    return statistics.quantiles(values, n=1000)[int(q * 10) - 1] if len(values) > 10 else max(values, default=0.0)
