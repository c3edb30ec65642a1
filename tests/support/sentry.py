"""A local Sentry: an HTTP endpoint on 127.0.0.1 that records every envelope the real SDK
transport POSTs to it, so that a test can read exactly what would have left the machine."""

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sentry_sdk.envelope import Envelope


class SentryEndpoint:
    """Answers like Sentry's ingest (`POST /api/<project>/envelope/`) and keeps the bodies,
    decompressed. Use as a context manager; `dsn` points an SDK client at it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding:
                    # Unreadable here, so a test could not see what it carries: fail loudly.
                    self.send_error(415, f"unsupported Content-Encoding {encoding}")
                    return
                with endpoint._lock:
                    endpoint.bodies.append(body)
                reply = json.dumps({"id": "0" * 32}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.dsn = f"http://public@127.0.0.1:{self.port}/1"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "SentryEndpoint":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def received(self) -> str:
        """Everything received so far, as one text: what a search for a secret must cover."""
        with self._lock:
            return "\n".join(body.decode("utf-8", "replace") for body in self.bodies)

    def items(self, item_type: str) -> list[dict]:
        """The JSON payloads of every received item of `item_type` (`event`, `transaction`)."""
        with self._lock:
            envelopes = [Envelope.deserialize(body) for body in self.bodies]
        return [
            item.payload.json
            for envelope in envelopes
            for item in envelope.items
            if item.type == item_type and item.payload.json is not None
        ]
