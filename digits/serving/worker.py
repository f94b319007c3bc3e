"""gunicorn's gevent worker with read deadlines and JSON errors: `worker_class` in gunicorn.conf.py.

A connection costs a greenlet, not a process, so clients that trickle their headers or body hold nothing a
normal upload needs; under a flood, waiting connections are accepted in bulk, so they meet the app's
work-slot limit (a fast 503) rather than a hidden queue. Each request must arrive whole within
REQUEST_DEADLINE seconds, with no silence longer than IDLE_TIMEOUT, or it is answered 408 and the
connection closed. gunicorn's own refusals (a bad request
line, too many headers, ...) leave as our JSON error shape rather than its HTML page. A plain upload is read
and answered in the upload lane (upload_lane.py), below gunicorn's request machinery, with the same answer.

This module imports nothing of ours at import time: gunicorn imports it in the master, before the metrics
folder exists, and metrics created then would not be shared between workers.
"""

import contextlib
import errno
import importlib.metadata
import json
import os
import socket
import struct
import time

import gevent
from gunicorn import util
from gunicorn.http import errors as parse_errors
from gunicorn.workers import ggevent
from gunicorn.workers.ggevent import GeventWorker
from werkzeug import exceptions as http

REQUEST_DEADLINE = float(os.environ.get("MNIST_REQUEST_DEADLINE", "15"))  # Seconds from a request's first byte.
IDLE_TIMEOUT = float(os.environ.get("MNIST_IDLE_TIMEOUT", "5"))  # Longest silence while a request is arriving.


class ReadTimeout(http.RequestTimeout):
    """The request did not arrive whole in time: a 408, whether gunicorn or the app was reading it."""

    description = (f"The request did not arrive completely within {REQUEST_DEADLINE:g} s "
                   f"(or paused for more than {IDLE_TIMEOUT:g} s).")


class DeadlineSocket:
    """A client socket whose reads, for one request, end at a deadline; everything else is the socket's."""

    def __init__(self, sock, wait_for_request):
        """Wrap `sock`; a new request may take `wait_for_request` seconds to start arriving."""
        self._sock = sock
        self.wait_for_request = wait_for_request
        self.deadline = None  # Set by the first byte of a request.
        self.expired = False
        self.request = None  # The request being served, once its headers are parsed.
        self._hold_next_write = False
        self._held = b""
        self._unread = b""  # Bytes read and put back (upload_lane.py), returned before the socket's.

    def recv(self, size, *flags):
        """Read at most `size` bytes, or b"" (a quiet close) if no request starts, or ReadTimeout."""
        if self._unread:
            data, self._unread = self._unread[:size], self._unread[size:]
            return data
        now = time.monotonic()
        if self.deadline is None:
            self._sock.settimeout(self.wait_for_request)
            try:
                data = self._sock.recv(size, *flags)
            except TimeoutError:
                return b""  # Nothing was asked: nothing to answer, the connection just closes.
            finally:
                self._sock.settimeout(None)
            self.deadline = now + REQUEST_DEADLINE
            return data
        remaining = self.deadline - now
        if remaining <= 0:
            raise self._expire()
        self._sock.settimeout(min(remaining, IDLE_TIMEOUT))
        try:
            return self._sock.recv(size, *flags)
        except TimeoutError:
            raise self._expire() from None
        finally:
            self._sock.settimeout(None)

    def unread(self, data):
        """Put bytes read back: the next reads return them first (the request's deadline runs on)."""
        self._unread = data + self._unread

    def _expire(self):
        """The request ran out of time: the connection closes after the 408 (the rest of the body is unread)."""
        self.expired = True
        if self.request is not None:
            self.request.must_close = True  # gunicorn then answers `Connection: close` and closes.
        return ReadTimeout()

    def request_done(self, wait_for_next):
        """The request was answered: the next one gets its own deadline, and `wait_for_next` s to begin."""
        self.deadline = None
        self.request = None
        self.wait_for_request = wait_for_next

    def hold_next_write(self):
        """Keep the next write (gunicorn writes a response's headers alone) to send with the one after it (the
        body): one send, one packet, instead of two. Whatever is held goes at the latest with flush()."""
        self._hold_next_write = True

    def sendall(self, data, *flags):
        """The socket's sendall, with a held write sent first, in the same call."""
        if self._hold_next_write:
            self._hold_next_write = False
            self._held = bytes(data)
            return None
        if self._held:
            data, self._held = self._held + bytes(data), b""
        return self._sock.sendall(data, *flags)

    def flush(self):
        """Send what is held (a response with no body has nothing to send it with)."""
        self._hold_next_write = False
        if self._held:
            held, self._held = self._held, b""
            self._sock.sendall(held)

    def send(self, data, *flags):
        """The socket's send, what is held going first."""
        self.flush()
        return self._sock.send(data, *flags)

    def sendfile(self, file, offset=0, count=None):
        """The socket's sendfile (gunicorn sends static files so), what is held going first."""
        self.flush()
        return self._sock.sendfile(file, offset, count)

    def fileno(self):
        """The socket's descriptor; whoever writes through it writes past us, so what is held goes first."""
        self.flush()
        return self._sock.fileno()

    def __getattr__(self, name):
        """Reading options, closing...: the socket's own."""
        return getattr(self._sock, name)


@contextlib.contextmanager
def entry_points_read_once():
    """Inside the block, importlib.metadata.entry_points answers from one reading of the installed packages.

    Only for a block in which nothing is installed or removed (the worker's start), so the answers are the
    ones the packages' metadata would give each time.
    """
    read = importlib.metadata.entry_points
    everything = read()

    def entry_points(**selection):
        return everything.select(**selection) if selection else everything

    importlib.metadata.entry_points = entry_points
    try:
        yield
    finally:
        importlib.metadata.entry_points = read


# Connections taken from the listen queue at once. One, as gunicorn does, while the queue is short: a
# worker then takes a connection when it is free to serve it, and the workers share the load evenly. But
# while a worker computes nothing is accepted, and under a flood the requests would wait unseen in the
# kernel's queue; once it holds FLOOD_QUEUE connections or more, they are taken in bulk, reach the app's
# work slot, and those over capacity are answered 503 at once.
FLOOD_QUEUE = int(os.environ.get("MNIST_FLOOD_QUEUE", "16"))
BULK_ACCEPT = 64
_TCP_INFO_SIZE = 32  # Up to tcpi_sacked; for a listening socket tcpi_unacked is its accept queue's length.


def accept_queue_length(listener):
    """Connections waiting in a listening TCP socket's accept queue (Linux), or 0 if it cannot say."""
    try:
        info = listener.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, AttributeError):
        return 0  # Not TCP (a Unix socket), or not Linux.
    return struct.unpack_from("I", info, 24)[0] if len(info) >= 28 else 0


class _StreamServer(ggevent.StreamServer):
    """gevent's server, accepting one connection at a time, or many when the accept queue shows a flood."""

    @property
    def max_accept(self):
        """Connections taken from the listen queue each time the loop looks."""
        return BULK_ACCEPT if accept_queue_length(self.socket) >= FLOOD_QUEUE else 1

    @max_accept.setter
    def max_accept(self, value):
        """gunicorn's value is replaced by ours."""


class DigitsWorker(GeventWorker):
    """The gevent worker with per-request read deadlines, JSON answers to requests gunicorn refuses, and the
    upload lane."""

    def init_process(self):
        """As gevent's worker, with our server class (gunicorn's worker builds its server by this global name),
        and the upload lane where the settings allow it."""
        from digits.serving import upload_lane

        self.upload_lane = upload_lane.for_worker(self.cfg)
        self._listener_names = {}
        if self.upload_lane is not None:
            self.log.info("Worker %s answers plain uploads in the upload lane", self.pid)
        ggevent.StreamServer = _StreamServer
        super().init_process()

    def patch(self):
        """gevent's monkey-patching, as gunicorn's worker does it, with the installed packages' entry points read
        once: gevent looks for plugins before and after patching each module, 25 times, and each look reads every
        installed package's metadata again (with the trainer's packages installed, most of the patching's time)."""
        with entry_points_read_once():
            super().patch()

    def handle(self, listener, client, addr):
        """Serve one connection through a DeadlineSocket: a plain upload in the upload lane, the rest as gunicorn
        does (with what the lane read put back)."""
        client.setblocking(1)
        sock = DeadlineSocket(client, wait_for_request=IDLE_TIMEOUT)
        if self.upload_lane is not None and self._in_upload_lane(listener, sock, addr):
            return
        super().handle(listener, sock, addr)

    def _in_upload_lane(self, listener, sock, addr):
        """Whether the upload lane took the connection: served it, or failed as gunicorn's handle() fails, and
        closed it. False: gunicorn is to take it (the lane put back what it read)."""
        if listener not in self._listener_names:
            self._listener_names[listener] = listener.getsockname()
        try:
            if not self.upload_lane.serve(sock, self._listener_names[listener], addr, self.wsgi):
                return False
            self.nr += 1
            if self.nr >= self.max_requests and self.alive:
                self.log.info("Autorestarting worker after current request.")
                self.alive = False
        except (gevent.GreenletExit, SystemExit):
            pass  # The worker is stopping: as in gunicorn's gevent worker, nothing more is answered.
        except OSError as error:
            if error.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.log.exception("Socket error processing request.")
        except Exception as error:
            self.handle_error(None, sock, addr, error)
        util.close(sock)
        return True

    def timeout_ctx(self):
        """No extra timer around header parsing: the DeadlineSocket bounds it, and answers 408 rather than nothing."""
        return contextlib.nullcontext()

    def handle_request(self, listener_name, req, sock, addr):
        """Serve one request; a connection whose request ran out of time is closed, its rest unread."""
        deadline_socket = isinstance(sock, DeadlineSocket)
        if deadline_socket:
            sock.request = req
            sock.hold_next_write()  # The response's headers go out with its body.
        try:
            super().handle_request(listener_name, req, sock, addr)
        finally:
            if deadline_socket:
                try:
                    sock.flush()
                finally:
                    sock.request_done(wait_for_next=self.cfg.keepalive)
        if deadline_socket and sock.expired:
            raise StopIteration()

    def handle_error(self, req, client, addr, exc):
        """Answer what gunicorn refused (or failed at) as JSON {error, message, status}, never HTML."""
        status, code, message = describe(exc)
        if status >= 500:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
        else:
            self.log.warning("Invalid request from ip=%s: %s", (addr or ("",))[0], exc)
        with contextlib.suppress(Exception):
            _record_error(code)
        try:
            util.write_nonblock(client, json_error_response(status, code, message))
        except Exception:
            self.log.debug("Failed to send error message.")


# gunicorn's parse errors, each as the status, code and message we answer with (our words, not its internals).
_REFUSALS = [
    (ReadTimeout, 408, "request_timeout", ReadTimeout.description),
    (parse_errors.LimitRequestLine, 414, "uri_too_long", "The request line (method, path and query) is too long."),
    (parse_errors.LimitRequestHeaders, 431, "request_header_fields_too_large",
     "The request has too many header fields, or one that is too long."),
    (parse_errors.UnsupportedTransferCoding, 501, "not_implemented", "That Transfer-Encoding is not supported."),
    (parse_errors.ExpectationFailed, 417, "expectation_failed", "That Expect header is not supported."),
    (parse_errors.ForbiddenProxyRequest, 403, "forbidden", "Proxy headers are not accepted from this address."),
    (parse_errors.ConfigurationProblem, 500, "internal_error", "The server is misconfigured; it has been logged."),
    (parse_errors.InvalidRequestLine, 400, "bad_request", "The request line is not valid HTTP."),
    (parse_errors.InvalidRequestMethod, 400, "bad_request", "The request method is not valid."),
    (parse_errors.InvalidHTTPVersion, 400, "bad_request", "The HTTP version is not supported."),
    (parse_errors.InvalidHeaderName, 400, "bad_request", "A header name is not valid."),
    (parse_errors.InvalidHeader, 400, "bad_request", "A header is not valid, or headers contradict each other."),
    (parse_errors.ObsoleteFolding, 400, "bad_request", "Folded (multi-line) headers are not accepted."),
    (parse_errors.InvalidProxyLine, 400, "bad_request", "The PROXY protocol line is not valid."),
    (parse_errors.InvalidSchemeHeaders, 400, "bad_request", "The forwarded scheme headers contradict each other."),
    ((parse_errors.InvalidChunkSize, parse_errors.ChunkMissingTerminator, parse_errors.InvalidChunkExtension),
     400, "bad_request", "The chunked request body is not valid."),
    (parse_errors.ParseException, 400, "bad_request", "The request could not be parsed as HTTP."),
]
_REASONS = {400: "Bad Request", 403: "Forbidden", 408: "Request Timeout", 414: "URI Too Long",
            417: "Expectation Failed", 431: "Request Header Fields Too Large", 500: "Internal Server Error",
            501: "Not Implemented"}


def describe(exc):
    """(status, code, message) for an exception that reached gunicorn's error handling."""
    if isinstance(exc, (parse_errors.InvalidResponseHeader, parse_errors.InvalidResponseHeaderName)):
        return 500, "internal_error", "The server failed to handle this request; it has been logged."
    for kinds, status, code, message in _REFUSALS:
        if isinstance(exc, kinds):
            return status, code, message
    return 500, "internal_error", "The server failed to handle this request; it has been logged."


def json_error_response(status, code, message):
    """A whole HTTP/1.1 response carrying our JSON error, closing the connection."""
    body = json.dumps({"error": code, "message": message, "status": status}).encode()
    head = (f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def _record_error(code):
    """Count the refusal in /metrics like the app's own errors (imported here, in the worker, late)."""
    from digits.serving import monitoring

    monitoring.record_error(code)

