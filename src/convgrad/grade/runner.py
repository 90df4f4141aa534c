"""Running the user's code safely: in a worker process with a time limit per call.

:class:`WorkerRunner` imports a file in a fresh Python process (``python -m
convgrad.grade.worker``) and asks it for each call; a call that does not answer within
its limit (an endless loop, a ten-minute loop) gets the process killed and restarted,
and comes back as a ``Timeout`` :class:`~.results.CallError`, as does a process that
dies. :class:`InProcessRunner` calls functions handed over directly, with a SIGALRM
watchdog where the platform has one (POSIX, main thread); elsewhere it cannot stop a
call that never returns.

Both answer ``call(method, *args, calls=n)`` for the methods of
:class:`~.calling.Session`, with n the number of user calls the method makes (its
time limit is n times the per-call one).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from multiprocessing.connection import Connection

from .calling import Session, Timeout
from .loading import LoadError
from .results import CallError

__all__ = ["WorkerRunner", "InProcessRunner"]


def _failure(method: str, error: CallError):
    """What ``method`` returns when the call failed as a whole."""
    return error if method == "directional" else (error, [])


class WorkerRunner:
    """The user's file, imported and called in a worker process."""

    def __init__(self, path: str, forward, backward, api: str, timeout: float,
                 import_timeout: float = 30.0):
        self.path, self.api, self.timeout = os.path.abspath(path), api, timeout
        self.import_timeout = import_timeout + timeout   # numpy and the file, on a busy machine
        self.asked = (forward, backward)
        self.process = None
        self.names = self._start()

    def _start(self):
        request_read, request_write = os.pipe()
        reply_read, reply_write = os.pipe()
        src = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ)
        env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.log = tempfile.TemporaryFile()
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "convgrad.grade.worker", str(request_read),
                 str(reply_write)], pass_fds=(request_read, reply_write),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.log,
                cwd=os.path.dirname(self.path), env=env)
        finally:
            os.close(request_read)
            os.close(reply_write)
        self.requests = Connection(request_write, readable=False)
        self.replies = Connection(reply_read, writable=False)
        reply = self._ask(("load", (self.path, *self.asked, self.api)), self.import_timeout)
        if isinstance(reply, CallError):
            self.close()
            raise LoadError(f"could not import {os.path.basename(self.path)}: {reply.message}")
        status, detail = reply
        if status != "ok":
            self.close()
            raise LoadError(detail)
        return detail

    def _ask(self, message, limit: float):
        try:
            self.requests.send(message)
            if self.replies.poll(limit):
                return self.replies.recv()
        except (EOFError, OSError, BrokenPipeError):
            self.process.wait()
            return CallError("WorkerDied", f"the process running your code exited with "
                             f"status {self.process.returncode}{self._log_tail()}")
        return CallError("Timeout", f"no answer within {limit:g} s")

    def _log_tail(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return f" ({lines[-1].strip()})" if lines else ""

    def call(self, method: str, *args, calls: int = 1):
        reply = self._ask((method, args), self.timeout * calls)
        if isinstance(reply, CallError):        # timed out or died: a fresh process
            if reply.type == "Timeout":
                reply = CallError("Timeout", f"did not return within {self.timeout:g} s"
                                  + (f" per call ({calls} calls)" if calls > 1 else ""))
            self.close()
            self._start()
            return _failure(method, reply)
        return reply

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        for connection in (getattr(self, "requests", None), getattr(self, "replies", None)):
            if connection is not None and not connection.closed:
                connection.close()
        if getattr(self, "log", None) is not None:
            self.log.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcessRunner:
    """Functions handed over directly, called in this process under a SIGALRM watchdog."""

    def __init__(self, forward, backward, api: str, timeout: float):
        self.timeout = timeout
        self.names = tuple(getattr(f, "__name__", None) if f else None
                           for f in (forward, backward))
        self.session = Session(forward, backward, api, self.names)

    def _alarm_possible(self) -> bool:
        return (hasattr(signal, "setitimer")
                and threading.current_thread() is threading.main_thread())

    def call(self, method: str, *args, calls: int = 1):
        limit = self.timeout * calls
        if not self._alarm_possible():
            return getattr(self.session, method)(*args)

        def expire(signum, frame):
            raise Timeout(f"did not return within {self.timeout:g} s"
                          + (f" per call ({calls} calls)" if calls > 1 else ""))

        previous = signal.signal(signal.SIGALRM, expire)
        signal.setitimer(signal.ITIMER_REAL, limit)
        try:
            return getattr(self.session, method)(*args)
        except Timeout as error:
            return _failure(method, CallError("Timeout", str(error)))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
