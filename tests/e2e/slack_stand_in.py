"""A local stand-in for Slack's Web API: records every accepted chat.postMessage, and can
throttle like Slack does (429 with `Retry-After: 1` to the next `throttled` posts)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class SlackStandIn:
    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.throttled = 0  # posts still to be answered 429
        self.refused = 0  # posts answered 429 so far
        lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with lock:
                    recorder.authorizations.append(self.headers.get("Authorization", ""))
                    refuse = recorder.throttled > 0
                    if refuse:
                        recorder.throttled -= 1
                        recorder.refused += 1
                    elif self.path.endswith("/chat.postMessage"):
                        recorder.messages.append(json.loads(body or b"{}"))
                answer = (
                    {"ok": False, "error": "ratelimited"}
                    if refuse
                    else {"ok": True, "channel": "C0E2E", "ts": "1.0"}
                )
                reply = json.dumps(answer).encode()
                self.send_response(429 if refuse else 200)
                if refuse:
                    self.send_header("Retry-After", "1")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/api/"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def texts(self) -> list[str]:
        return [str(message.get("text", "")) for message in self.messages]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
