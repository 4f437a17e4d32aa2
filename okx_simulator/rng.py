"""Stateless, seedable hashing used to derive every random choice of the simulated market.

The market is a pure function of (seed, instId, time): each value comes from ``mix(...)`` of integers, so any
minute of the tape, any book level or any burst can be recomputed in isolation, in any order, and always
gives the same answer.
"""

from __future__ import annotations

import hashlib
from typing import Final

__all__ = ["key_of", "mix", "unit"]

_MASK: Final = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit hash of the integers ``parts`` (order matters)."""
    acc = 0x243F6A8885A308D3
    for part in parts:
        acc = (acc ^ (part & _MASK)) + 0x9E3779B97F4A7C15 & _MASK
        acc = (acc ^ (acc >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
        acc = (acc ^ (acc >> 27)) * 0x94D049BB133111EB & _MASK
        acc ^= acc >> 31
    return acc


def unit(value: int) -> float:
    """Map a 64-bit hash to a float in [0, 1)."""
    return (value >> 11) / float(1 << 53)


def key_of(text: str) -> int:
    """A stable 64-bit integer for a string (an instrument id), independent of PYTHONHASHSEED."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
