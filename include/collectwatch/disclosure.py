"""Disclosure-control checks over the public files, for the gate (DESIGN "Published
regional tables"). dbt decides what to suppress (macros/disclosure_control.sql); these
frames check the files about to be published against it, independently:

* cells: every public cell with its contributor count and largest contributor's share from
  the never-published ``disclosure_audit`` table, the thresholds from the same seed dbt
  uses, and whether the file withholds its measures. A cell under the thresholds whose
  measures are published is *exposed*.
* groups: every additive equation among public cells (the nation and its provinces per
  breakdown value; a region's breakdown cells and its total in another table) with how
  many of its cells are suppressed. Exactly one would equal the published total minus the
  published cells.

A cell counts as suppressed when every numeric column of its row is empty.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from collectwatch import tables
from collectwatch.config import PROJECT_ROOT, connect_duckdb

THRESHOLDS_SEED = PROJECT_ROOT / "dbt_project" / "seeds" / "disclosure_thresholds.csv"
AUDIT_COLUMNS = (
    "period",
    "table_name",
    "level",
    "region_code",
    "bucket",
    "contributors",
    "largest_contributor_share",
)


def thresholds(path: Path = THRESHOLDS_SEED) -> dict[str, float]:
    """The frequency and dominance thresholds (rule -> value) dbt applies."""
    seed = pd.read_csv(path)
    return dict(zip(seed["rule"], seed["threshold"].astype(float), strict=True))


def cell_keys(table: tables.PublishedTable) -> list[str]:
    return ["period", "level", "region_code", *table.breakdown]


def suppressed(public: pd.DataFrame, table: tables.PublishedTable) -> pd.Series:
    """True for rows whose every numeric column is empty (withheld)."""
    keys = cell_keys(table)
    measures = [
        column
        for column in public.columns
        if column not in keys and pd.api.types.is_numeric_dtype(public[column])
    ]
    return public[measures].isna().all(axis=1)


def build_cells(
    public: pd.DataFrame,
    audit: pd.DataFrame,
    table: tables.PublishedTable,
    limits: dict[str, float],
) -> pd.DataFrame:
    """One row per public cell: contributors, largest share, suppressed, exposed."""
    keys = cell_keys(table)
    audited = audit.loc[
        audit["table_name"] == table.name, [*keys, "contributors", "largest_contributor_share"]
    ]
    cells = public[keys].assign(suppressed=suppressed(public, table).to_numpy())
    audited = audited.astype({key: cells[key].dtype for key in keys})
    cells = cells.merge(audited, on=keys, how="left", validate="one_to_one")
    # A cell the audit does not know was never checked: it must not be published either.
    # An empty cell (0 contributors: an expected region nothing was reported in) describes
    # no institution and is published as zeros.
    too_few = cells["contributors"].isna() | cells["contributors"].between(
        1, limits["min_contributors"] - 1
    )
    dominated = cells["largest_contributor_share"] > limits["max_largest_share"]
    cells["under_thresholds"] = too_few | dominated.fillna(False)
    cells["exposed"] = cells["under_thresholds"] & ~cells["suppressed"]
    return cells


def _count(cells: pd.DataFrame, by: list[str], table: str, equation: str) -> pd.DataFrame:
    grouped = (
        cells.groupby(by, dropna=False)["suppressed"]
        .agg(cells="size", suppressed_cells="sum")
        .reset_index()
    )
    grouped["group"] = grouped[by].astype(str).agg(" ".join, axis=1)
    grouped["suppressed_cells"] = grouped["suppressed_cells"].astype(int)
    return grouped[["period", "group", "cells", "suppressed_cells"]].assign(
        table=table, equation=equation
    )


def build_groups(publics: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per additive equation among the public cells, with its suppressed count."""
    marked = {
        name: frame[cell_keys(tables.published_table(name))].assign(
            suppressed=suppressed(frame, tables.published_table(name)).to_numpy()
        )
        for name, frame in publics.items()
    }
    groups = []
    for name, cells in marked.items():
        table = tables.published_table(name)
        groups.append(
            _count(cells, ["period", *table.breakdown], name, "nation = sum of provinces")
        )
        if table.breakdown and table.breakdown_total in marked:
            linked = pd.concat([cells, marked[table.breakdown_total]], ignore_index=True)
            groups.append(
                _count(
                    linked,
                    ["period", "level", "region_code"],
                    name,
                    f"{table.breakdown_total} = sum over {', '.join(table.breakdown)}",
                )
            )
    return pd.concat(groups, ignore_index=True)


def read_audit(warehouse: Path, periods: list[str]) -> pd.DataFrame:
    """The disclosure audit rows of ``periods`` from a (candidate) warehouse, read-only."""
    con = connect_duckdb(warehouse, read_only=True)
    try:
        return con.execute(
            f"select * from {tables.DISCLOSURE_AUDIT} where list_contains(?, period)",
            [list(periods)],
        ).df()
    finally:
        con.close()
