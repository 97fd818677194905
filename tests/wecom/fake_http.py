"""The fake WeCom's HTTP serving (tests/wecom/fake_wecom.py): wsgiref's server on a thread per
connection, quiet, and an HTTP/1.1 keep-alive mode."""

from __future__ import annotations

from socketserver import ThreadingMixIn
from typing import IO, cast
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer


class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    connections = 0  # accepted so far (keep-alive tests count them)

    def get_request(self):
        request = super().get_request()
        self.connections += 1  # the serving thread alone accepts
        return request


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ServerHandler11(ServerHandler):
    http_version = "1.1"
    request_handler: WSGIRequestHandler  # set per request, as WSGIRequestHandler.handle does


class KeepAliveHandler(QuietHandler):
    """HTTP/1.1 with persistent connections, as WeCom's front end answers: wsgiref serves one
    request per connection (HTTP/1.0), so a client pays a TCP connect per call, which a
    benchmark of many small calls would measure instead of TagDesk. Every answer of
    :meth:`tests.wecom.fake_wecom.FakeWecom.app` carries its Content-Length, which keep-alive needs."""

    protocol_version = "HTTP/1.1"
    # The status line, the headers and the body go out in separate writes: with Nagle's
    # algorithm on, the body waits for the client's delayed ACK, 40 ms a call.
    disable_nagle_algorithm = True

    def handle(self) -> None:
        self.close_connection = False
        while not self.close_connection:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline or len(self.raw_requestline) > 65536:
                return
            if not self.parse_request():  # answered the error itself
                return
            handler = _ServerHandler11(
                self.rfile,
                cast(IO[bytes], self.wfile),
                self.get_stderr(),
                self.get_environ(),
                multithread=True,
            )
            handler.request_handler = self
            app = cast(WSGIServer, self.server).get_app()
            assert app is not None  # make_server set it
            handler.run(app)
