"""Who runs next, and what happens to replies a client is not reading (README "Fairness").

The engine's queue is one line per client, served round-robin: a client that sends thirty
edits waits behind itself, not in front of everyone else. A reply that cannot go out at
once because the client is not reading is held, in order, until it reads; held replies
count against that client's own limit and the engine's byte budget, so a client that
never reads ends up refused (`busy`) rather than filling the engine's memory.

Not thread-safe: the engine calls these under its own lock (queue) or from its socket
thread only (outbox).
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar


class Owned(Protocol):
    @property
    def peer(self) -> Hashable: ...


J = TypeVar("J", bound=Owned)


class FairQueue(Generic[J]):
    """Jobs in one line per owner (`job.peer`); pop() takes the head of the owner whose
    turn it is, then moves that owner to the back."""

    def __init__(self) -> None:
        self._lines: OrderedDict[Hashable, deque[J]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def append(self, job: J) -> None:
        self._lines.setdefault(job.peer, deque()).append(job)
        self._size += 1

    def popleft(self) -> J:
        if not self._lines:
            raise IndexError("pop from an empty FairQueue")
        peer, line = next(iter(self._lines.items()))
        job = line.popleft()
        self._size -= 1
        if line:
            self._lines.move_to_end(peer)
        else:
            del self._lines[peer]
        return job

    def remove(self, job: J) -> None:
        line = self._lines[job.peer]
        line.remove(job)
        self._size -= 1
        if not line:
            del self._lines[job.peer]

    def count(self, peer: Hashable) -> int:
        line = self._lines.get(peer)
        return len(line) if line else 0

    def clear(self) -> list[J]:
        jobs = list(self)
        self._lines.clear()
        self._size = 0
        return jobs

    def __iter__(self) -> Iterator[J]:
        """In the order pop() will hand them out: the queue positions clients are told."""
        lines = [list(line) for line in self._lines.values()]
        for depth in range(max((len(line) for line in lines), default=0)):
            for line in lines:
                if depth < len(line):
                    yield line[depth]


@dataclass
class Held:
    frames: list[Any]
    nbytes: int
    request_id: str
    since: float = field(default_factory=time.monotonic)


class Outbox:
    """Final replies (results and errors of admitted work) waiting for clients that are
    not reading. `try_send(peer, frames)` returns False when the client's pipe is full."""

    def __init__(self, try_send: Callable[[Any, list[Any]], bool]) -> None:
        self._try_send = try_send
        self._held: dict[Any, deque[Held]] = {}

    def __bool__(self) -> bool:
        return bool(self._held)

    def count(self, peer: Any) -> int:
        line = self._held.get(peer)
        return len(line) if line else 0

    def peers(self) -> list[Any]:
        return list(self._held)

    @property
    def nbytes(self) -> int:
        return sum(h.nbytes for line in self._held.values() for h in line)

    def send(self, peer: Any, frames: list[Any], nbytes: int, request_id: str) -> None:
        """Send now, or hold behind what this client already has waiting (order kept)."""
        if peer in self._held or not self._try_send(peer, frames):
            self._held.setdefault(peer, deque()).append(Held(frames, nbytes, request_id))

    def flush(self) -> None:
        for peer in list(self._held):
            line = self._held.get(peer)  # try_send may have forgotten a vanished peer
            while line and self._try_send(peer, line[0].frames):
                line.popleft()
            if not line:
                self._held.pop(peer, None)

    def forget(self, peer: Any) -> None:
        self._held.pop(peer, None)

    def expire(self, older_than: float, replace: Callable[[Held], list[Any]]) -> int:
        """Give up the pixels of replies held longer than `older_than` seconds, keeping a
        small message in their place; returns how many were given up."""
        now, given_up = time.monotonic(), 0
        for line in self._held.values():
            for held in line:
                if held.nbytes and now - held.since > older_than:
                    held.frames, held.nbytes = replace(held), 0
                    given_up += 1
        return given_up
