"""Close on leaving a ``with`` block: the one ``__enter__``/``__exit__`` pair of everything
mangaroute hands out that owns threads, clients or sockets.

Below every layer (it imports nothing of mangaroute), like :mod:`mangaroute._text`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

__all__ = ["AsyncClosesOnExit", "ClosesOnExit"]


class ClosesOnExit(ABC):
    """``with owner:`` closes ``owner`` on the way out, whatever ends the block.

    A subclass defines ``close()`` (one without it cannot be built); an exception in the
    block is never swallowed.
    """

    __slots__ = ()

    @abstractmethod
    def close(self) -> None:
        """Release what the owner holds; called once per ``with`` block."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosesOnExit(ClosesOnExit):
    """:class:`ClosesOnExit` for ``async with`` too: the blocking ``close()`` runs in the
    event loop's default executor, so leaving the block does not stall the loop."""

    __slots__ = ()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)
