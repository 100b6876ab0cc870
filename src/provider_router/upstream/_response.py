"""A provider's answer: its status and headers at once, its body piece by piece.

The caller must end every answer: ``release()`` once the body has been read to its end (the
connection goes back to its pool if the provider keeps it open), or ``close()`` to abandon it
(the connection is dropped, which is how a provider learns the caller left).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from provider_router.upstream._connection import Connection

_JSON: Final = "application/json"


class Response:
    __slots__ = ("_connection", "_ended", "_release", "headers", "status")

    def __init__(self, connection: Connection, release: Callable[[Connection], None]) -> None:
        self._connection = connection
        self._release = release
        self._ended = False
        self.status = connection.status
        self.headers: list[tuple[bytes, bytes]] = connection.headers
        """Lower-cased names and values as sent, in the provider's order."""

    def header(self, name: bytes) -> bytes | None:
        """The first header named ``name`` (lower case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def content_type(self) -> str:
        """The media type, lower-cased and without parameters (``application/json`` if the
        provider named none)."""
        value = self.header(b"content-type")
        if value is None:
            return _JSON
        return value.partition(b";")[0].strip().lower().decode("latin-1")

    async def read_chunk(self) -> bytes:
        """The next piece of the body as it arrived, or b"" once it has ended."""
        connection = self._connection
        while True:
            piece = connection.take()
            if piece is not None:
                return piece
            await connection.wait_body()

    async def read(self, limit: int, *, truncate: bool = False) -> bytes:
        """The whole body; past ``limit`` bytes a ``ValueError``, or with ``truncate`` its
        first ``limit`` bytes (the rest is not read: close the answer then)."""
        pieces: list[bytes] = []
        size = 0
        while True:
            piece = await self.read_chunk()
            if not piece:
                return pieces[0] if len(pieces) == 1 else b"".join(pieces)
            size += len(piece)
            pieces.append(piece)
            if size > limit:
                if truncate:
                    return b"".join(pieces)[:limit]
                raise ValueError(f"the answer is larger than {limit} bytes")

    def release(self) -> None:
        """Done with the answer: its connection is reused if it can be, else dropped."""
        if not self._ended:
            self._ended = True
            self._release(self._connection)

    def close(self) -> None:
        """Abandon the answer: the connection is dropped."""
        if not self._ended:
            self._ended = True
            self._connection.abort()
            self._release(self._connection)


__all__ = ["Response"]
