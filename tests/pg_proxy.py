"""A TCP proxy in front of the test PostgreSQL server, so that a test can cut connections
(the network failing, a server going away) without touching the server others use."""

from __future__ import annotations

import socket
import threading

UPSTREAM = ("127.0.0.1", 5432)


class Proxy:
    """Forwards 127.0.0.1:``port`` to the server.

    ``cut_first_after``: the first connection is cut once that many bytes came from the
    server (a network failure mid-answer); later ones are left alone. ``stop()``
    cuts every connection and refuses new ones (a server that stays down).
    """

    def __init__(self, cut_first_after: int | None = None) -> None:
        self.cut_first_after = cut_first_after
        self.connections = 0
        self.cut = False
        self.from_server: list[int] = []  # bytes the server sent, per connection
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, schema: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/test?options=-csearch_path%3D{schema}"

    def stop(self) -> None:
        with self._lock:
            self._close(self._listener)
            for sock in self._sockets:
                self._close(sock)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(UPSTREAM)
            with self._lock:
                number = self.connections
                self.connections += 1
                self.from_server.append(0)
                self._sockets += [client, server]
            limit = self.cut_first_after if number == 0 else None
            threading.Thread(target=self._pump, args=(client, server, None, None), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, number, limit), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket, number: int | None, limit: int | None) -> None:
        try:
            while data := source.recv(65536):
                if number is not None:
                    self.from_server[number] += len(data)
                    if limit is not None and self.from_server[number] > limit:
                        self.cut = True
                        break
                target.sendall(data)
        except OSError:
            pass
        self._close(source)
        self._close(target)

    @staticmethod
    def _close(sock: socket.socket) -> None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
