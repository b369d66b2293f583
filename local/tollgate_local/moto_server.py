"""moto server for the local stack: moto's WSGI app on a threaded server, one request at a time.

moto's ``ThreadedMotoServer`` serves moto's WSGI app (``DomainDispatcherApplication``) on a
threaded werkzeug server, a thread per request, with nothing between them. moto's backends are
not thread-safe: TransactWriteItems deep-copies the tables it writes (to roll back) while
another request changes them, and even a read changes them (a table's items are a
defaultdict, so GetItem/BatchGetItem of a missing key adds an empty partition). moto then
answers 500 with a traceback. This server runs moto's app behind one lock instead: the
requests of the handlers, the stream poller, the alarm evaluator and the CLI are answered
one at a time (moto answers in about a millisecond), as if by a single-threaded AWS.

SNS is the exception: moto delivers to HTTP subscribers *inside* the Publish request, and a
subscriber may call moto back before it answers (an alarm action does). Held across that,
the lock would deadlock, so SNS requests run outside it; what they change (their topics, and
the SQS queues they deliver to) is safe for that: a list append, no copies.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

#: Services whose requests call out (synchronously) to code that may call moto back.
CALLS_OUT = frozenset({"sns"})


class SerialisedMotoApp(DomainDispatcherApplication):
    """moto's dispatcher (one Flask app per service), with each request answered under one lock."""

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._serial = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        app = self.get_application(environ)
        if getattr(app, "service", None) in CALLS_OUT:
            return app(environ, start_response)
        with self._serial:
            # The body is read while locked too: a WSGI response may be produced lazily.
            response = app(environ, start_response)
            try:
                return [b"".join(response)]
            finally:
                close = getattr(response, "close", None)
                if close is not None:
                    close()


class LocalMotoServer:
    """moto on ``host:port`` (0: any free port) in a daemon thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._server: BaseWSGIServer = make_server(
            host, port, SerialisedMotoApp(), threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, name="moto-server", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
