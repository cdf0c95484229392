"""USCC check characters: the Python, numpy and SQL versions agree and catch typos."""

from __future__ import annotations

import duckdb
import numpy as np

from collectwatch import uscc


def test_known_valid_codes():
    assert uscc.is_valid("91440300MA5G8XXXXM")
    assert uscc.is_valid("11100000MB0000000P")


def test_a_changed_character_is_caught():
    assert not uscc.is_valid("91440300MA5G8XXXXN")
    assert not uscc.is_valid("91440300MA5G8XXYXM")
    assert not uscc.is_valid("91440300MA5G8XXXX")  # too short
    assert not uscc.is_valid("91440300MA5G8XXXXI")  # I is not in the alphabet


def test_numpy_and_sql_agree_with_python():
    rng = np.random.default_rng(7)
    alphabet = np.array(list(uscc.ALPHABET))
    bodies = ["".join(row) for row in rng.choice(alphabet, size=(500, 17))]
    checks = uscc.check_characters(np.array(bodies))
    assert list(checks) == [uscc.check_character(body) for body in bodies]
    con = duckdb.connect()
    con.execute("create table codes (code varchar)")
    con.executemany(
        "insert into codes values (?)", [[b + c] for b, c in zip(bodies, checks, strict=True)]
    )
    con.execute("insert into codes values ('91440300MA5G8XXXXN')")
    valid = con.execute(f"select count(*) filter ({uscc.sql_is_valid('code')}) from codes")
    assert valid.fetchone()[0] == 500
