"""gunicorn's gthread worker, adapted to this API (``worker_class`` in gunicorn.conf.py).

- **Slow clients cost no thread.**  gthread hands a connection to one of its threads as soon
  as a byte arrives, and the thread then blocks until the whole request is in: 16 clients
  trickling a byte every few seconds hold all 16 threads (2 workers x 8).  Here the main
  loop of each worker reads the request (head and body, up to the API's 1 MiB body limit)
  without blocking, and only a complete request goes to a thread.  A request that has not
  arrived within ``REQUEST_TIMEOUT`` seconds (from the connection's opening, or on a
  kept-alive connection from its first byte) is answered 408 and closed.
  What must be read in a thread (``Expect: 100-continue``, a body over the limit, a huge
  head) is bounded by the same time.
- **gunicorn's own error answers** (400 malformed request line, 414, 431, 501 …) carry
  the API's JSON envelope instead of gunicorn's HTML page.
- **A response the application marks ``Connection: close``** (413, 408: the rest of the
  body was never read) closes the connection; gunicorn drops hop-by-hop headers that an
  application sets, so the worker carries it out.

TLS in gunicorn itself (``certfile``) and HTTP/2 leave the request reading to gthread as it
is; the README's production set-up puts nginx, which buffers requests, in front anyway.
"""

import errno
import html
import json
import logging
import os
import re
import selectors
import time
from functools import partial

from gunicorn.workers.gthread import ThreadWorker

from . import errors
from .app import Envelope
from .params import MAX_BODY_BYTES
from .settings import DEFAULTS

log = logging.getLogger(__name__)

#: Seconds a request may take to arrive: from the connection's opening (or, kept alive, from
#: the request's first byte) to its last byte.
REQUEST_TIMEOUT = float(os.environ.get("IREDAPI_REQUEST_TIMEOUT", "10"))
#: A request head larger than this is handed to gunicorn's parser at once (which refuses
#: what is over its own limits); the API's heads are a few hundred bytes.
HEAD_BUFFER_LIMIT = 64 * 1024
_READ_SIZE = 64 * 1024


class ApiWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._arriving = {}  # fd -> _Arrival
        self._envelope = Envelope(DEFAULTS["API_ENVELOPE"])

    # -- the application ------------------------------------------------------------------

    def load_wsgi(self):
        super().load_wsgi()
        services = getattr(self.wsgi, "services", None)
        if services is not None:
            self._envelope = services.envelope
        self.wsgi = _CloseWhenAsked(self.wsgi)

    # -- reading requests in the main loop -------------------------------------------------

    def enqueue_req(self, conn):
        if self.cfg.is_ssl:
            super().enqueue_req(conn)
            return
        buffered = _buffered_input(conn)
        if buffered:  # a pipelined request, already in gunicorn's buffer
            arrival = _Arrival(conn, 0)
            arrival.feed(buffered)
            conn.sock.start_request(b"", complete=arrival.complete)
            super().enqueue_req(conn)
            return
        if not isinstance(conn.sock, _ArrivalSocket):
            conn.sock = _ArrivalSocket(conn.sock)
        conn.sock.setblocking(False)
        arrival = _Arrival(conn, time.monotonic() + REQUEST_TIMEOUT)
        # Usually the request is there already (a kept-alive connection became readable, a
        # new one sent at once): no round through the poller then.
        if not self._read(arrival):
            self._arriving[conn.sock.fileno()] = arrival
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, arrival))

    def _on_readable(self, arrival, _fileobj):
        self._read(arrival, registered=True)

    def _read(self, arrival, registered=False):
        """Read what is there; True once the connection is no longer the main loop's."""
        conn = arrival.conn
        try:
            data = conn.sock.raw_recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            data = b""
        if not data:  # the client went away
            if registered:
                self._forget(arrival)
            self.nr_conns -= 1
            conn.close()
            return True
        if not arrival.feed(data):
            return False
        if registered:
            self._forget(arrival)
        conn.sock.start_request(bytes(arrival.buffer), complete=arrival.complete)
        if hasattr(conn, "data_ready"):
            conn.data_ready = True  # gunicorn >= 25 would otherwise wait for the socket
        super().enqueue_req(conn)
        return True

    def _forget(self, arrival):
        self._arriving.pop(arrival.conn.sock.fileno(), None)
        try:
            self.poller.unregister(arrival.conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def murder_keepalived(self, *args, **kwargs):
        super().murder_keepalived(*args, **kwargs)
        self._expire_arrivals(force=kwargs.get("force", False))

    def handle_exit(self, sig, frame):
        super().handle_exit(sig, frame)
        # run in the main loop, which the queue wakes: gunicorn < 25 would otherwise wait for
        # the next event, up to graceful_timeout, before it looks at the connections again
        self.method_queue.defer(self._expire_arrivals)

    def _expire_arrivals(self, force=False):
        now = time.monotonic()
        for arrival in list(self._arriving.values()):
            # a stopping worker does not wait for connections on which no request has begun
            if arrival.deadline > now and not force and (self.alive or arrival.buffer):
                continue
            self._forget(arrival)
            self.nr_conns -= 1
            if arrival.buffer:  # a request began: say why it ends
                self.log.warning("request from %s not complete after %.0f s: closed",
                                 _peer(arrival.conn.client), REQUEST_TIMEOUT)
                _send_quietly(arrival.conn.sock, self._request_timeout_answer())
            arrival.conn.close()

    # -- reading in a thread (what the main loop hands over incomplete) ----------------

    def handle(self, conn):
        if isinstance(conn.sock, _ArrivalSocket):
            conn.sock.deadline = time.monotonic() + REQUEST_TIMEOUT
        return super().handle(conn)

    # -- gunicorn's own error answers ------------------------------------------------------

    def handle_error(self, req, client, addr, exc):
        if isinstance(exc, errors.RequestTimeout):
            if not getattr(client, "answered", False):
                self.log.warning("request from %s not complete after %.0f s: closed", _peer(addr), REQUEST_TIMEOUT)
                _send_quietly(client, self._request_timeout_answer())
            return
        super().handle_error(req, _JsonErrorPage(client, self._envelope), addr, exc)

    def _request_timeout_answer(self):
        detail = f"the request did not arrive within {REQUEST_TIMEOUT:.0f} s"
        return _json_answer(408, "Request Timeout", self._envelope, errors.REQUEST_TIMEOUT, detail)


class _Arrival:
    """A request being read by the main loop: is it all there yet?"""

    def __init__(self, conn, deadline):
        self.conn = conn
        self.deadline = deadline
        self.buffer = bytearray()
        self.complete = False  # the whole request is in the buffer
        self._body_start = None
        self._length = None  # Content-Length
        self._chunk_at = None  # chunked: where the next chunk-size line starts

    def feed(self, data):
        """Add ``data``; True when the request can go to a thread (complete, or to be read there)."""
        searched_to = max(len(self.buffer) - 3, 0)
        self.buffer += data
        if self._body_start is None:
            end = self.buffer.find(b"\r\n\r\n", searched_to)
            if end < 0:
                # a bare-LF head is left to gunicorn's parser, and so is one over the limit
                return b"\n\n" in self.buffer or len(self.buffer) > HEAD_BUFFER_LIMIT
            self._body_start = end + 4
            framing = _framing(bytes(self.buffer[:end]))
            if framing is None:
                return True  # read in a thread: Expect: 100-continue, odd framing
            if framing == "chunked":
                self._chunk_at = self._body_start
            else:
                self._length = framing
                if self._length > MAX_BODY_BYTES:
                    return True  # refused (413) unread
        if self._length is not None:
            self.complete = len(self.buffer) >= self._body_start + self._length
            return self.complete
        self.complete = self._chunks_complete()
        return self.complete or len(self.buffer) - self._body_start > MAX_BODY_BYTES + HEAD_BUFFER_LIMIT

    def _chunks_complete(self):
        """Walk the chunk-size lines received so far (RFC 9112 section 7.1)."""
        buffer = self.buffer
        while True:
            line_end = buffer.find(b"\r\n", self._chunk_at)
            if line_end < 0:
                return False
            size_text = bytes(buffer[self._chunk_at:line_end]).split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                return True  # malformed: gunicorn's parser says so
            if size == 0:  # last chunk; then optional trailer fields and an empty line
                trailer_start = line_end + 2
                if buffer[trailer_start:trailer_start + 2] == b"\r\n":
                    return True
                return buffer.find(b"\r\n\r\n", trailer_start) >= 0
            next_at = line_end + 2 + size + 2
            if len(buffer) < next_at:
                return False
            if buffer[next_at - 2:next_at] != b"\r\n":
                return True  # malformed: gunicorn's parser says so
            self._chunk_at = next_at


def _framing(head):
    """The body's length, ``"chunked"``, or None for a request best read in a thread."""
    lines = head.split(b"\r\n")
    if lines[0].startswith(b"PRI "):  # an HTTP/2 preface
        return None
    length = chunked = None
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return None
            length = int(value)
        elif name == b"transfer-encoding":
            if chunked is not None:
                return None
            chunked = value.rsplit(b",", 1)[-1].strip() == b"chunked"
            if not chunked:
                return None
        elif name == b"expect":
            return None  # the client waits for gunicorn's "100 Continue" before it sends the body
    if chunked and length is not None:
        return None
    if chunked:
        return "chunked"
    return length or 0


class _ArrivalSocket:
    """The connection's socket, first giving out what the main loop has read, then reading
    with the request's deadline; gunicorn's parser and the application read through it."""

    def __init__(self, sock):
        self._sock = sock
        self._buffered = b""
        self.deadline = None
        self.answered = False  # the response to the current request has begun
        self.complete = False

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def fileno(self):
        return self._sock.fileno()

    def raw_recv(self, size):
        return self._sock.recv(size)

    def start_request(self, buffered, complete):
        self._buffered = buffered
        self.answered = False
        self.complete = complete

    def recv(self, size, *flags):
        if self._buffered:
            data, self._buffered = self._buffered, b""
            return data  # all at once: what belongs to a next request lands in gunicorn's buffer
        if self.answered or self.deadline is None:
            return self._sock.recv(size, *flags)
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise errors.RequestTimeout(errors.REQUEST_TIMEOUT,
                                        detail=f"the request did not arrive within {REQUEST_TIMEOUT:.0f} s")
        before = self._sock.gettimeout()
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            raise errors.RequestTimeout(errors.REQUEST_TIMEOUT,
                                        detail=f"the request did not arrive within {REQUEST_TIMEOUT:.0f} s") from None
        finally:
            self._sock.settimeout(before)


class _CloseWhenAsked:
    """WSGI wrapper: carries out ``Connection: close`` from the application (gunicorn drops
    hop-by-hop headers an application sets), and closes after a request whose body was
    read in a thread, where the rest of it may still be on the way."""

    def __init__(self, app):
        self.app = app
        self.services = getattr(app, "services", None)

    def __call__(self, environ, start_response):
        sock = environ.get("gunicorn.socket")

        def start(status, headers, exc_info=None):
            close = any(name.lower() == "connection" and value.lower() == "close" for name, value in headers)
            if isinstance(sock, _ArrivalSocket):
                sock.answered = True
                close = close or not sock.complete
            if close:
                headers = [(name, value) for name, value in headers if name.lower() != "connection"]
                gunicorn_response = getattr(start_response, "__self__", None)
                if hasattr(gunicorn_response, "force_close"):
                    gunicorn_response.force_close()  # answers "Connection: close" and closes
            return start_response(status, headers, exc_info)

        return self.app(environ, start)


class _JsonErrorPage:
    """Stands in for the client socket while gunicorn writes one of its HTML error pages,
    and sends the same status with our JSON envelope instead."""

    def __init__(self, sock, envelope):
        self._sock = sock
        self._envelope = envelope

    def __getattr__(self, name):
        return getattr(self._sock, name)

    def sendall(self, data, *flags):
        text = bytes(data).decode("latin-1")
        status_line = text.split("\r\n", 1)[0].split(" ", 2)
        if len(status_line) == 3 and status_line[0].startswith("HTTP/") and status_line[1].isdigit():
            status, reason = int(status_line[1]), status_line[2]
            if status < 500 or status == 501:  # 501: a transfer coding we do not take
                message = _PAGE_MESSAGE.search(text)
                detail = html.unescape(message.group(1)) if message and message.group(1) else reason
                data = _json_answer(status, reason, self._envelope, errors.MALFORMED_REQUEST, detail[:300])
            else:
                data = _json_answer(status, reason, self._envelope, errors.INTERNAL_ERROR)
        return self._sock.sendall(data, *flags)

    def send(self, data, *flags):
        self.sendall(data, *flags)
        return len(data)


_PAGE_MESSAGE = re.compile(r"</h1>\s*(.*?)\s*</body>", re.S)


def _json_answer(status, reason, envelope, code, detail=None):
    payload = json.dumps(envelope.failure_body(code, detail=detail)).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n")
    return head.encode("latin-1") + payload


def _send_quietly(sock, data):
    """Best effort, without blocking: the client is closed right after."""
    try:
        sock.setblocking(False)
        sock.send(data)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, None):
            log.debug("could not answer a timed-out client: %s", exc)


def _buffered_input(conn):
    """What the connection's parser already holds of the next request: gunicorn >= 25
    re-queues such a connection at once (pipelining)."""
    unreader = getattr(getattr(conn, "parser", None), "unreader", None)
    buf = getattr(unreader, "buf", None)
    return buf.getvalue() if buf is not None else b""


def _peer(addr):
    if isinstance(addr, tuple) and addr:
        return addr[0]
    return "a Unix socket client"

