"""The run file's concurrency: the writer lock (one writer at a time, a dead writer's lock
taken over) and the write transaction.

A writer records itself in the run file's ``lock`` table (pid, host, process start
time, token). Another writer is refused while that process lives; a lock left by a dead
process on this host (or by a RunFile of this process that was dropped) is taken over.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import uuid
from typing import Any

from .run_file_format import RunLockedError, now_iso

#: Tokens of the write locks held by RunFile objects of this process.
HELD: set[str] = set()


def process_start(pid: int) -> str:
    """Start time of a process (Linux: clock ticks since boot), '' where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


def pid_alive(pid: int) -> bool:
    """True when a process with this id runs on this host (zombies count as dead)."""
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # type: ignore[attr-defined]
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))  # type: ignore[attr-defined]
        ctypes.windll.kernel32.CloseHandle(handle)  # type: ignore[attr-defined]
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def holder_alive(row: tuple[Any, ...]) -> bool:
    """Whether the writer recorded in a lock row (pid, host, started, time, token) still runs."""
    opid, ohost, ostarted, _otime, otoken = row
    if ohost != socket.gethostname():
        return True  # cannot check a process on another machine
    if opid == os.getpid():
        return otoken in HELD
    return pid_alive(opid) and not (ostarted and ostarted != process_start(opid))


def lock_row(conn: sqlite3.Connection) -> tuple[Any, ...] | None:
    """The lock table's one row (pid, host, started, time, token), or None when unlocked."""
    return conn.execute("SELECT pid, host, started, time, token FROM lock WHERE id = 1").fetchone()


def acquire(conn: sqlite3.Connection, name: str, break_lock: bool) -> str:
    """Take the writer lock of the open run file ``name``; return its token (kept in HELD).

    Raises RunLockedError while another live writer holds it, unless ``break_lock``.
    """
    host, pid = socket.gethostname(), os.getpid()
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError:
        raise RunLockedError(
            f"run file {name} is open for writing in another window/process; open it read-only"
        ) from None
    try:
        row = lock_row(conn)
        if row is not None and not break_lock:
            opid, ohost, _ostarted, otime, _otoken = row
            if holder_alive(row):
                raise RunLockedError(
                    f"run file {name} is open for writing in another window/process "
                    f"(pid {opid} on {ohost}, since {otime}); open it read-only or close the other one"
                )
        token = uuid.uuid4().hex
        conn.execute("INSERT OR REPLACE INTO lock VALUES (1, ?, ?, ?, ?, ?)",
                     (pid, host, process_start(pid), now_iso(), token))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    HELD.add(token)
    return token


class Transaction:
    """``with``: BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), holding the store's mutex."""

    def __init__(self, conn: sqlite3.Connection, mutex: threading.RLock) -> None:
        self.conn, self.mutex = conn, mutex

    def __enter__(self) -> None:
        self.mutex.acquire()
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.mutex.release()
            raise

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            self.conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
        finally:
            self.mutex.release()
