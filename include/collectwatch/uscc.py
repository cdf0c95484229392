"""Unified Social Credit Code (统一社会信用代码, GB 32100-2015) check character.

The 18th character is a check over the first 17 with weights 3^i mod 31 in an alphabet of
31 characters (digits and capitals without I, O, S, V, Z). Both a numpy version (for the
generator) and a SQL expression (for intake edits over whole files) are provided, and
tests prove they agree.
"""

from __future__ import annotations

import numpy as np

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


def check_character(first17: str) -> str:
    total = sum(
        ALPHABET.index(char) * weight for char, weight in zip(first17, WEIGHTS, strict=False)
    )
    return ALPHABET[(31 - total % 31) % 31]


def is_valid(code: str) -> bool:
    if len(code) != 18 or any(char not in ALPHABET for char in code):
        return False
    return check_character(code[:17]) == code[17]


def check_characters(first17: np.ndarray) -> np.ndarray:
    """Check characters for an array of 17-character strings, without a Python loop."""
    lookup = np.full(128, -1, dtype=np.int64)
    lookup[np.frombuffer(ALPHABET.encode(), dtype=np.uint8)] = np.arange(len(ALPHABET))
    codes = np.frombuffer("".join(first17).encode("ascii"), dtype=np.uint8).reshape(-1, 17)
    total = (lookup[codes] * np.array(WEIGHTS)).sum(axis=1)
    alphabet = np.array(list(ALPHABET))
    return alphabet[(31 - total % 31) % 31]


def sql_check_character(first17: str) -> str:
    """A DuckDB expression: the check character of the 17-character text ``first17``."""
    terms = " + ".join(
        f"{weight} * (strpos('{ALPHABET}', substr({first17}, {i + 1}, 1)) - 1)"
        for i, weight in enumerate(WEIGHTS)
    )
    return f"substr('{ALPHABET}', ((31 - ({terms}) % 31) % 31) + 1, 1)"


def sql_is_valid(column: str) -> str:
    """A DuckDB boolean expression: true when ``column`` is an 18-character USCC whose
    check character is right."""
    return (
        f"(regexp_full_match({column}, '[{ALPHABET}]{{18}}') and "
        f"{sql_check_character(column)} = substr({column}, 18, 1))"
    )
