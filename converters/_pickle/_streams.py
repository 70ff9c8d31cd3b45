"""Bounded input streams: what the pre-scan and the C unpickler read from."""

from __future__ import annotations


class _FileStream:
    """A binary file that never reads past its end: a declared length larger than what is left
    gets a short read (so the caller sees a truncation), never a huge allocation."""

    copies = True  # read_view allocates what it returns

    def __init__(self, f, end: int):
        self._f, self._end, self._pos = f, int(end), f.tell()

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> None:
        self._pos = self._f.seek(pos)

    def remaining(self) -> int:
        return max(0, self._end - self._pos)

    def read(self, n: int = -1) -> bytes:
        r = self._end - self._pos
        data = self._f.read(r if n is None or n < 0 or n > r else n)
        self._pos += len(data)
        return data

    read_view = read

    def readinto(self, b) -> int:
        mv = memoryview(b).cast("B")
        r = self._end - self._pos
        got = self._f.readinto(mv[: max(r, 0)] if len(mv) > r else mv) or 0
        self._pos += got
        return got

    def readline(self, limit: int = -1) -> bytes:
        r = self._end - self._pos
        data = self._f.readline(r if limit is None or limit < 0 or limit > r else limit)
        self._pos += len(data)
        return data

    def peek(self, n: int = 1) -> bytes:
        r = self._end - self._pos
        if r <= 0:
            return b""
        return self._f.peek(min(max(n, 1), r))[:r]


class _MemStream:
    """The same interface over bytes in memory; ``read_view`` slices without copying."""

    copies = False  # read_view is a view of bytes the budget already paid for

    def __init__(self, data: bytes | bytearray):
        self._data = data
        self._mv = memoryview(data).cast("B")
        self._pos = 0

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> None:
        self._pos = int(pos)

    def remaining(self) -> int:
        return max(0, len(self._mv) - self._pos)

    def read_view(self, n: int):
        n = self.remaining() if n is None or n < 0 else min(n, self.remaining())
        out = self._mv[self._pos : self._pos + n]
        self._pos += n
        return out

    def read(self, n: int = -1) -> bytes:
        return bytes(self.read_view(n))

    def readinto(self, b) -> int:
        mv = memoryview(b).cast("B")
        chunk = self.read_view(len(mv))
        mv[: len(chunk)] = chunk
        return len(chunk)

    def readline(self, limit: int = -1) -> bytes:
        end = self._data.find(b"\n", self._pos)
        end = len(self._mv) if end < 0 else end + 1
        if limit is not None and limit >= 0:
            end = min(end, self._pos + limit)
        return self.read(end - self._pos)

    def peek(self, n: int = 1) -> bytes:
        return bytes(self._mv[self._pos : self._pos + max(n, 1)])
