"""Calling the HTTP port (HTTP_LISTEN) as a caller without gRPC would: curl with JSON, and Connect's
streaming envelope (one flags byte and a 4-byte big-endian length before each message)."""

from __future__ import annotations

import json
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from devtools.harness import SERVICE


@dataclass
class CurlAnswer:
    http_version: str
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def curl(url: str, body: bytes, *headers: str, options: Sequence[str] = ()) -> CurlAnswer:
    """POST `body` with curl (and its `options`); the status, the (lower-cased) headers and the body."""
    # No "Expect: 100-continue" (curl's default for large bodies): one response head to read.
    argv = ["curl", "-sS", "--max-time", "30", "-D", "-", "-H", "Expect:", "--data-binary", "@-", *options]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run([*argv, url], input=body, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    status_line, *lines = head.decode().split("\r\n")  # "HTTP/1.1 200" or "HTTP/2 200"
    fields = dict(line.split(": ", 1) for line in lines if ": " in line)
    version, status = status_line.split()[:2]
    return CurlAnswer(version, int(status), {k.lower(): v for k, v in fields.items()}, payload)


def method_url(http_address: str, method: str) -> str:
    return f"http://{http_address}/{SERVICE}/{method}"


def envelope(message: dict[str, Any]) -> bytes:
    data = json.dumps(message).encode()
    return struct.pack(">BI", 0, len(data)) + data


def unframe(body: bytes) -> list[tuple[int, Any]]:
    """Connect stream frames: (flags, JSON); flags 2 marks the end-of-stream message."""
    frames = []
    while body:
        flags, length = struct.unpack(">BI", body[:5])
        frames.append((flags, json.loads(body[5 : 5 + length])))
        body = body[5 + length :]
    return frames
