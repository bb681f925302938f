"""Helpers for the reliability E2E suites (fault matrix, failing stores, races).

Everything here inspects what the real server stored, the way an operator would: plain SQL on
the SQLite file, and the sandbox's own view of a rider's passes.
"""

from __future__ import annotations

import json
import re
import select
import socket
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any

from devtools.harness import SandboxProcess, ServerProcess

_REQUEST_ID = re.compile(r"\(request id ([A-Za-z0-9._:-]+)\)")
# What a reply about a failed store must not carry: engines, hosts, users, paths, driver classes.
_WHERE_MARKS = ("SQLite", "sqlite", "MySQL", "MongoDB", "127.0.0.1", "@", "/", "Error", "errno")


def assert_store_failure_says_what_not_where(details: str, server_logs: str, *detail: str) -> None:
    """The caller learns the store failed and gets a request id; the server's log line with that
    request id holds the detail (`detail`: words it must contain)."""
    assert details.startswith("cache store unavailable"), details
    assert [mark for mark in _WHERE_MARKS if mark in details] == [], details
    found = _REQUEST_ID.search(details)
    assert found is not None, details
    lines = [line for line in server_logs.splitlines() if found.group(1) in line]
    assert any(all(word in line for word in detail) for line in lines), (found.group(1), detail, lines)


CACHE_ROW_SQL = "SELECT * FROM bytemark_tickets_cache WHERE user_id = ?"
LOG_COUNT_SQL = "SELECT COUNT(*) FROM bytemark_tickets_log WHERE user_id = ?"


def raw_cache_row(server: ServerProcess, user_id: int) -> tuple[Any, ...] | None:
    """The user's cache row exactly as stored (every column), or None."""
    rows = server.query(CACHE_ROW_SQL, (user_id,))
    return rows[0] if rows else None


def ticket_log_count(server: ServerProcess, user_id: int) -> int:
    return int(server.query(LOG_COUNT_SQL, (user_id,))[0][0])


def stored_lists(server: ServerProcess, user_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The stored `passes` and `passes4` entry documents."""
    rows = server.query("SELECT passes, passes4 FROM bytemark_tickets_cache WHERE user_id = ?", (user_id,))
    assert rows, f"no cache row for user {user_id}"
    return json.loads(rows[0][0]), json.loads(rows[0][1])


def sandbox_passes(sandbox: SandboxProcess, user_id: int) -> list[dict[str, Any]]:
    return list(sandbox.call("GET", f"/_sandbox/users/{user_id}")["passes"])


def change_passes(sandbox: SandboxProcess, user_id: int) -> None:
    """Give a refresh something to do in both lists: one current pass changes status, one current
    pass and one expired pass are added."""
    passes = sandbox_passes(sandbox, user_id)
    current = next(p for p in passes if p["status"] != "EXPIRED")
    new_status = "ACTIVE" if current["status"] == "USABLE" else "USABLE"
    sandbox.call("PATCH", f"/_sandbox/users/{user_id}/passes/{current['uuid']}", {"status": new_status})
    template = {key: value for key, value in current.items() if key != "uuid"}
    sandbox.call("POST", f"/_sandbox/users/{user_id}/passes", {**template, "status": "USABLE"})
    sandbox.call("POST", f"/_sandbox/users/{user_id}/passes", {**template, "status": "EXPIRED"})


def assert_cache_matches_sandbox(server: ServerProcess, sandbox: SandboxProcess, user_id: int) -> None:
    """The stored cache is the complete, current picture: `passes` holds exactly the rider's
    non-expired passes with Bytemark's payloads, `passes4` holds every expired pass (and may keep
    older history), and neither list repeats a uuid."""
    passes, passes4 = stored_lists(server, user_id)
    upstream = sandbox_passes(sandbox, user_id)
    current = {p["uuid"]: p for p in upstream if p["status"] != "EXPIRED"}
    expired = {p["uuid"]: p for p in upstream if p["status"] == "EXPIRED"}
    assert_no_duplicate_uuids(passes, passes4)
    assert {e["pass_uuid"]: e["payload"] for e in passes} == current
    stored4 = {e["pass_uuid"]: e["payload"] for e in passes4}
    assert {uuid: stored4.get(uuid) for uuid in expired} == expired


def assert_no_duplicate_uuids(*lists: Sequence[dict[str, Any]]) -> None:
    for entries in lists:
        uuids = [entry["pass_uuid"] for entry in entries]
        assert len(uuids) == len(set(uuids)), f"duplicate pass_uuid in {uuids}"


class TcpProxy:
    """A threaded TCP relay on a free local port, so a test can take a database away and give it
    back without touching the database server.

    `cut()` refuses new connections and resets the open ones (a crashed or unplugged server);
    `stall()` keeps accepting but relays nothing (a network that black-holes packets);
    `restore()` relays again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._stalled = False
        self.port = 0
        self._open_listener()

    def _open_listener(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # the listener was closed by cut()
            with self._lock:
                if self._stalled:
                    self._sockets.append(client)  # held open, never answered
                    continue
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._relay, args=(client, upstream), daemon=True).start()

    def _relay(self, client: socket.socket, upstream: socket.socket) -> None:
        peers = {client: upstream, upstream: client}
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 0.2)
                if self._stalled:  # forward nothing: the bytes wait in the kernel buffers
                    time.sleep(0.05)
                    continue
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    peers[source].sendall(data)
        except (OSError, ValueError):
            return
        finally:
            for sock in peers:
                _close_hard(sock)

    def cut(self) -> None:
        """Refuse new connections and reset every open one."""
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone would leave the
                # socket listening until that accept() returned.
                _close_hard(self._listener)
                self._listener = None
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _close_hard(sock)

    def stall(self) -> None:
        with self._lock:
            self._stalled = True

    def restore(self) -> None:
        with self._lock:
            self._stalled = False
            sockets, self._sockets = self._sockets, []
        for sock in sockets:  # connections accepted while stalled were never relayed: drop them
            _close_hard(sock)
        if self._listener is None:
            self._open_listener()

    def close(self) -> None:
        self.cut()


def _close_hard(sock: socket.socket) -> None:
    """Close at once with a reset (SO_LINGER 0), as a crashed peer looks to a client."""
    for step in (
        lambda: sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)),
        lambda: sock.shutdown(socket.SHUT_RDWR),  # also wakes a thread blocked on this socket
        sock.close,
    ):
        try:
            step()
        except OSError:
            pass
