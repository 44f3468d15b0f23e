"""Stand-in text: counting input tokens, making answers, cutting them into stream chunks.

Nothing here is a tokenizer. Input tokens are estimated at about four characters per token —
the rule of thumb model providers quote for English text — and an answer's "tokens" are its
whitespace-separated pieces, so a streamed answer reassembles to exactly the same string.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

__all__ = ["chunk_pieces", "estimate_tokens", "filler_pieces", "split_pieces"]

_CHARS_PER_TOKEN = 4
_PIECE = re.compile(r"\s*\S+|\s+$")
_VOCABULARY = (
    "manga", "volume", "chapter", "series", "author", "artist", "edition", "shelf",
    "story", "panel", "hero", "rival", "sequel", "release", "store", "reader",
)  # fmt: skip


def estimate_tokens(texts: Iterable[str]) -> int:
    """About one token per four characters, at least one for any non-empty input."""
    chars = sum(len(text) for text in texts)
    return -(-chars // _CHARS_PER_TOKEN)


def split_pieces(text: str) -> list[str]:
    """Cut ``text`` into pieces (leading whitespace kept) whose concatenation is ``text``."""
    return _PIECE.findall(text)


def filler_pieces(count: int, rng: random.Random) -> list[str]:
    """``count`` words of neutral filler, the first without a leading space."""
    words = [rng.choice(_VOCABULARY) for _ in range(count)]
    return [word if i == 0 else f" {word}" for i, word in enumerate(words)]


def chunk_pieces(pieces: Sequence[str], per_chunk: int) -> list[Sequence[str]]:
    """Group ``pieces`` into stream chunks of ``per_chunk`` pieces (the last may be short)."""
    return [pieces[i : i + per_chunk] for i in range(0, len(pieces), per_chunk)]
