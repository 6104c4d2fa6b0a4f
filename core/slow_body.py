"""A time limit on request bodies for gunicorn: WSGI middleware that config.wsgi wraps Django in.

gunicorn's gthread workers put no limit on how long a request body may take to arrive,
so a client that trickles an upload holds a thread for as long as it likes. This wrapper
bounds it: no byte for DERMCURATE_BODY_IDLE_SECONDS, or a whole body that takes longer than
those seconds plus its length at DERMCURATE_BODY_MIN_BYTES_PER_SECOND, and the request is
answered 408 (and gunicorn closes the connection). It needs the client socket, which gunicorn hands over as
environ["gunicorn.socket"]; under other servers it does nothing (put a proxy with
`client_body_timeout` in front instead).
"""

import contextlib
import heapq
import itertools
import socket
import threading
import time

from django.conf import settings


class BodyTimeout(TimeoutError):
    pass


class _Watchdog:
    """One thread per process that cuts off bodies past their deadline: it shuts the socket's read
    side, so a recv() that a trickle keeps alive returns at once (a socket timeout alone only
    bounds the wait for each next byte)."""

    def __init__(self):
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, _DeadlineInput]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, body: "_DeadlineInput") -> None:
        with self._lock:
            heapq.heappush(self._heap, (body.deadline, next(self._order), body))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="slow-body-watchdog", daemon=True)
                self._thread.start()
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._heap and self._heap[0][2].done:
                    heapq.heappop(self._heap)
                wait = self._heap[0][0] - time.monotonic() if self._heap else None
                if wait is None or wait > 0:
                    self._lock.wait(timeout=wait)
                    continue
                _deadline, _order, body = heapq.heappop(self._heap)
            body.cut_off()


_watchdog = _Watchdog()


class _DeadlineInput:
    def __init__(self, stream, sock: socket.socket, *, idle: float, deadline: float, length: int):
        self._stream, self._sock, self._idle, self.deadline = stream, sock, idle, deadline
        self._left = length
        self.timed_out = False
        self.done = False  # the whole body was read, or the request is over

    def cut_off(self) -> None:
        if self.done:
            return
        self.timed_out = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RD)

    def _call(self, method, *args):
        if self.timed_out or self.deadline <= time.monotonic():
            self.timed_out = True
            raise BodyTimeout("the request body took too long to arrive")
        prior = self._sock.gettimeout()
        self._sock.settimeout(self._idle)
        try:
            data = method(*args)
        except TimeoutError as error:
            self.timed_out = True
            raise BodyTimeout("the request body stopped arriving") from error
        finally:
            with contextlib.suppress(OSError):
                self._sock.settimeout(prior)
        if self.timed_out:
            raise BodyTimeout("the request body took too long to arrive")
        self._left -= len(data)
        if self._left <= 0:
            self.done = True
        return data

    def read(self, size=None):
        return self._call(self._stream.read, size)

    def readline(self, size=None):
        return self._call(self._stream.readline, size)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class SlowBodyGuard:
    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        sock = environ.get("gunicorn.socket")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if sock is None or length <= 0:
            return self.app(environ, start_response)
        idle = settings.DERMCURATE_BODY_IDLE_SECONDS
        body = _DeadlineInput(
            environ["wsgi.input"],
            sock,
            idle=idle,
            deadline=time.monotonic() + idle + length / settings.DERMCURATE_BODY_MIN_BYTES_PER_SECOND,
            length=length,
        )
        environ["wsgi.input"] = body
        _watchdog.watch(body)

        def start_unless_timed_out(status, headers, exc_info=None):
            # The body is read before the view answers, so by now the timeout has happened or not.
            if body.timed_out:
                return lambda data: None
            return start_response(status, headers, exc_info)

        try:
            result = self.app(environ, start_unless_timed_out)
        finally:
            body.done = True  # a body the view did not read to the end is no longer watched
        if not body.timed_out:
            return result
        if hasattr(result, "close"):
            result.close()
        message = b"The request body arrived too slowly and was cut off; send it again on a faster connection.\n"
        start_response(
            "408 Request Timeout",
            # No Connection header (hop-by-hop, not a WSGI app's to set): gunicorn closes the
            # connection itself, since the rest of the body was never read.
            [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(message)))],
        )
        return [message]
