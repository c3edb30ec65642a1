"""A TCP proxy that a test can cut, stall or make lose replies: the way to make PostgreSQL,
Redis or ClickHouse fail for the processes under test at an exact point, without touching the
real services the rest of the suite (and the machine) uses."""

import socket
import threading
import time
from contextlib import suppress


class CuttableProxy:
    """Forwards 127.0.0.1:<port> (or `listen_host`:<port>) to `target`.

    - `cut()` closes every connection and refuses new ones (connection refused, as when a
      service is down); `restore()` listens again on the same port.
    - `stall()` keeps accepting connections but forwards nothing either way (a server that
      accepts and never answers); `restore()` ends it.
    - `drop_replies(count, marker)` forwards the next `count` requests whose first bytes
      contain `marker` to the target, lets the target do the work, and then closes the client's
      connection instead of passing the reply on (a reply lost after the server acted).
    """

    def __init__(
        self,
        target_host: str,
        target_port: int,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
    ):
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stalled = threading.Event()
        self._drops_left = 0
        self._drop_marker = b""
        self.replies_dropped = 0
        self.port = listen_port
        self.restore()

    def restore(self) -> None:
        self._stalled.clear()
        if self._listener is not None:
            return
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.listen_host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            connections, self._connections = self._connections, set()
        if listener is not None:
            with suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for connection in connections:
            _close(connection)

    close = cut

    def stall(self) -> None:
        """From now on nothing passes: open connections and new ones hang."""
        self._stalled.set()

    def drop_replies(self, count: int, *, marker: bytes) -> None:
        with self._lock:
            self._drops_left = count
            self._drop_marker = marker

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _address = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self._connections.update((client, upstream))
            # A reply to drop is armed by the request, then noticed by the reply's pipe.
            dropping = threading.Event()
            threading.Thread(
                target=self._pipe_requests, args=(client, upstream, dropping), daemon=True
            ).start()
            threading.Thread(
                target=self._pipe_replies, args=(upstream, client, dropping), daemon=True
            ).start()

    def _connect_upstream(self) -> socket.socket:
        """A connection to the target for a new client (a subclass may pick the target)."""
        upstream = socket.create_connection(self.target, timeout=5)
        upstream.settimeout(None)
        return upstream

    def _wait_while_stalled(self) -> None:
        while self._stalled.is_set():
            time.sleep(0.05)

    def _pipe_requests(
        self, source: socket.socket, destination: socket.socket, dropping: threading.Event
    ) -> None:
        try:
            while data := source.recv(65536):
                self._wait_while_stalled()
                with self._lock:
                    if self._drops_left and self._drop_marker in data:
                        self._drops_left -= 1
                        dropping.set()
                destination.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                destination.shutdown(socket.SHUT_WR)

    def _pipe_replies(
        self, source: socket.socket, destination: socket.socket, dropping: threading.Event
    ) -> None:
        try:
            while data := source.recv(65536):
                self._wait_while_stalled()
                if dropping.is_set() and data.startswith(b"HTTP/1.1 100 "):
                    # An interim "100 Continue" (the request body is yet to come): pass it on
                    # and drop the final reply instead.
                    interim, _, data = data.partition(b"\r\n\r\n")
                    destination.sendall(interim + b"\r\n\r\n")
                    if not data:
                        continue
                if dropping.is_set():
                    # The server has acted and answered; the client never hears of it.
                    with self._lock:
                        self.replies_dropped += 1
                    _close(destination)
                    _close(source)
                    return
                destination.sendall(data)
        except OSError:
            pass
        finally:
            with suppress(OSError):
                destination.shutdown(socket.SHUT_WR)


def _close(connection: socket.socket) -> None:
    with suppress(OSError):
        connection.shutdown(socket.SHUT_RDWR)
    connection.close()
