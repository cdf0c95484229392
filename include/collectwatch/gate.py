"""The quality gate: Great Expectations suites run over the exact files about to be published.

``run_gate`` reads ``internal/<table>.parquet`` for every table in
``tables.PUBLISHED_TABLES`` as pandas DataFrames and validates them with real GX 1.x
checkpoints (ephemeral context, pandas data source, one dataframe asset per dataset).
Cross-level totals and jumps against earlier data are not single-table rules, so they are
computed here into small derived DataFrames (one row per check) that GX validates like
every other rule; every result the pipeline acts on comes out of a checkpoint result.

The suites are checked in as JSON under ``expectations/`` so reviewers read the rules
as data. They are generated from ``tables.py`` (``python -m collectwatch.gate``) and a
unit test fails when the checked-in files and the registry drift apart.

Severity lives in each suite's ``meta.severity``: ``blocking`` suites fail the gate,
``warning`` suites are reported only. Anything the gate cannot evaluate (a missing table
file, an unreadable suite, an exception while validating) is a blocking failure, so the
gate never passes because it did not look.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from collectwatch import disclosure, tables
from collectwatch.config import NO_TELEMETRY_ENV, PROJECT_ROOT, Settings, connect_duckdb

logger = logging.getLogger(__name__)

DEFAULT_EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"
BLOCKING = "blocking"
WARNING = "warning"

# Suites over the derived frames, shared by every table.
RECONCILIATION_SUITE = "reconciliation.blocking"
NATIONAL_CHANGE_SUITE = "national_change.warning"
# Suites over the public files (disclosure control).
DISCLOSURE_CELLS_SUITE = "disclosure_cells.blocking"
DISCLOSURE_GROUPS_SUITE = "disclosure_groups.blocking"
# Published regions against the expected ones (tables.EXPECTED_REGIONS), every scope.
EXPECTED_REGIONS_SUITE = "expected_regions.blocking"
# How the regional distribution moved since the last publication of the same period.
DISTRIBUTION_DRIFT_SUITE = "distribution_drift.warning"

# Tolerances of the rules (DESIGN "Quality gate"): money is DECIMAL(18,2), so sums of
# cents are exact and one cent covers float rounding; counts must match exactly.
MONEY_TOLERANCE = 0.01
MAX_RELATIVE_CHANGE = 0.5
# Distribution drift: the total variation distance between the provinces' shares of a
# national total now and in the last publication, i.e. the fraction of the total that
# changed province. A revision that moves more than a tenth is worth a look.
MAX_DISTRIBUTION_DRIFT = 0.1
REGION_AS_EXPECTED = "as expected"
# The region check covers every complete table at once; its failures carry this name.
REGIONS_DATASET = "expected_regions"

# Columns of the derived frames copied into each failing example, after the breakdown.
RECONCILIATION_INDEX = ("region_code", "measure", "parent_value", "children_sum")
NATIONAL_CHANGE_INDEX = ("measure", "reference_period", "current_value", "reference_value")
DISCLOSURE_CELLS_INDEX = ("contributors", "largest_contributor_share", "suppressed")
DISCLOSURE_GROUPS_INDEX = ("table", "equation", "period", "group", "cells", "suppressed_cells")
EXPECTED_REGIONS_INDEX = ("scope", "period", "level", "region_code", "region_status")
DISTRIBUTION_DRIFT_INDEX = (
    "measure",
    "drift",
    "most_moved_region",
    "share_now",
    "share_before",
)

# How many offending rows each failure carries into the result and the reports.
EXAMPLES_PER_FAILURE = 5


@dataclass(frozen=True)
class GateResult:
    """What the pipeline needs to decide whether to publish, and where the reports are."""

    passed: bool
    blocking_failures: list[dict]
    warnings: list[dict]
    report_json: Path
    report_html: Path


@dataclass(frozen=True)
class _Dataset:
    """One DataFrame validated by one checkpoint run against one or more suites."""

    name: str
    table: str
    frame: pd.DataFrame
    suites: tuple[str, ...]
    # Columns GX copies into each unexpected row, so a failure names the row it is about.
    index_columns: tuple[str, ...]


# ---------------------------------------------------------------------------------------
# Great Expectations import and context
# ---------------------------------------------------------------------------------------


def _import_gx() -> ModuleType:
    """Import GX lazily with analytics off: importing it costs seconds, and a regulator's
    pipeline must not phone home (DESIGN "Phoning home")."""
    os.environ["GX_ANALYTICS_ENABLED"] = NO_TELEMETRY_ENV["GX_ANALYTICS_ENABLED"]
    import great_expectations as gx

    return gx


def _ephemeral_context(gx: ModuleType) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    # In-memory stores: the gate's state is its report, nothing is written behind our back.
    # Progress bars would only clutter Airflow task logs.
    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False, metric_calculations=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


# ---------------------------------------------------------------------------------------
# Suites: generated from tables.py, checked in as JSON, loaded at run time
# ---------------------------------------------------------------------------------------


def required_suite_names() -> list[str]:
    """Every suite the gate runs; a missing file for any of them fails the gate."""
    names = []
    for table in tables.PUBLISHED_TABLES:
        names.append(f"{table.name}.{BLOCKING}")
        if table.rates_warn_above_one:
            names.append(f"{table.name}.{WARNING}")
    names += [RECONCILIATION_SUITE, NATIONAL_CHANGE_SUITE, DISTRIBUTION_DRIFT_SUITE]
    if any(table.every_expected_region for table in tables.PUBLISHED_TABLES):
        names.append(EXPECTED_REGIONS_SUITE)
    if any(table.public for table in tables.PUBLISHED_TABLES):
        names += [DISCLOSURE_CELLS_SUITE, DISCLOSURE_GROUPS_SUITE]
    return names


def _rule(rule: str, en: str, zh: str) -> dict:
    return {"rule": rule, "description": en, "description_zh": zh}


def _required_columns(table: tables.PublishedTable) -> list[str]:
    region_columns = tables.REGION_COLUMNS if table.regional else ("period",)
    columns = [*region_columns, "release_status", *table.key]
    columns += [*table.additive, *table.shares, *table.rates_warn_above_one]
    return list(dict.fromkeys(columns))


def _structure_expectations(gxe: ModuleType, table: tables.PublishedTable) -> list:
    expectations = [
        # One rule for all columns (not one per column): it names every missing column
        # at once, and GX's cost is per expectation.
        gxe.ExpectTableColumnsToMatchSet(
            column_set=_required_columns(table),
            exact_match=False,
            meta=_rule(
                "columns_present", "the published columns must all be present", "发布表的列必须齐全"
            ),
        )
    ]
    if table.regional:
        # A list of institutions over thresholds may rightly be empty; a regional table not.
        expectations.append(
            gxe.ExpectTableRowCountToBeBetween(
                min_value=1,
                meta=_rule("not_empty", "the table must have rows", "表不得为空"),
            )
        )
    expectations.append(
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=list(table.key),
            meta=_rule(
                "key_unique",
                f"key ({', '.join(table.key)}) must be unique",
                f"主键 ({', '.join(table.key)}) 不得重复",
            ),
        )
    )
    expectations += [
        gxe.ExpectColumnValuesToNotBeNull(
            column=column,
            meta=_rule("not_null", f"{column} must not be empty", f"{column} 不得为空"),
        )
        for column in dict.fromkeys([*table.key, "release_status"])
    ]
    return expectations


def _code_expectations(gxe: ModuleType, table: tables.PublishedTable) -> list:
    # In-set and regex rules skip nulls in GX; the not-null rules above cover those.
    expectations = [
        gxe.ExpectColumnValuesToBeInSet(
            column="period",
            # Bound per run through the checkpoint's expectation_parameters.
            value_set={"$PARAMETER": "periods"},
            meta=_rule(
                "period_expected",
                "period must be one of the periods being published",
                "统计期须为本次发布的统计期",
            ),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="release_status",
            value_set=list(tables.RELEASE_STATUSES),
            meta=_rule(
                "release_status_allowed",
                "release_status must be preliminary, final or revised",
                "发布状态须为初步、最终或修订",
            ),
        ),
    ]
    if table.regional:
        expectations += [
            gxe.ExpectColumnValuesToMatchRegex(
                column="region_code",
                regex=r"^\d{6}$",
                meta=_rule(
                    "region_code_format", "region_code must be 6 digits", "区划代码须为6位数字"
                ),
            ),
            gxe.ExpectColumnValuesToBeInSet(
                column="level",
                value_set=list(tables.LEVELS),
                meta=_rule(
                    "level_allowed",
                    "level must be national, province or prefecture",
                    "层级须为全国、省或地市",
                ),
            ),
        ]
    return expectations


def _measure_expectations(gxe: ModuleType, table: tables.PublishedTable) -> list:
    expectations = []
    for column in table.additive:
        expectations.append(
            gxe.ExpectColumnValuesToNotBeNull(
                column=column,
                # A null would silently count as zero in the cross-level totals.
                meta=_rule("not_null", f"{column} must not be empty", f"{column} 不得为空"),
            )
        )
        expectations.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=column,
                min_value=0,
                meta=_rule("non_negative", f"{column} must not be negative", f"{column} 不得为负"),
            )
        )
    expectations += [
        gxe.ExpectColumnValuesToBeBetween(
            column=column,
            min_value=0,
            max_value=1,
            meta=_rule(
                "share_in_unit_interval",
                f"{column} must lie in [0, 1]",
                f"{column} 须在 0 到 1 之间",
            ),
        )
        for column in table.shares
    ]
    return expectations


def _rate_expectations(gxe: ModuleType, table: tables.PublishedTable) -> list:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column=column,
            min_value=0,
            max_value=1,
            severity="warning",
            meta=_rule(
                "rate_above_one",
                f"{column} above 1 (recovering more than the balance)",
                f"{column} 大于1(回收额超过余额)",
            ),
        )
        for column in table.rates_warn_above_one
    ]


def _floor_expectations(gxe: ModuleType, table: tables.PublishedTable) -> list:
    from great_expectations.expectations.row_conditions import Column

    return [
        gxe.ExpectColumnValuesToBeBetween(
            column=column,
            # Bound per run from Settings.coverage_floor.
            min_value={"$PARAMETER": "coverage_floor"},
            max_value=1,
            row_condition=Column("level") == "national",
            meta=_rule(
                "coverage_floor",
                f"national {column} must be at or above the coverage floor",
                f"全国{column}不得低于覆盖率下限",
            ),
        )
        for column in table.floor_columns
    ]


def _disclosure_cells_expectations(gxe: ModuleType) -> list:
    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1,
            meta=_rule(
                "disclosure_checked", "public cells must have been checked", "须已检查公开单元格"
            ),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="exposed",
            value_set=[False],
            meta=_rule(
                "no_small_cell_published",
                "no public cell with fewer than 3 contributors or one over 85% may be "
                "published (seed disclosure_thresholds)",
                "贡献机构少于3家或单一机构占比超过85%的单元格不得公开",
            ),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="level",
            value_set=list(tables.PUBLIC_LEVELS),
            meta=_rule(
                "public_levels_only",
                "the public scope has national and province rows only",
                "公开范围仅含全国和省级",
            ),
        ),
    ]


def _disclosure_groups_expectations(gxe: ModuleType) -> list:
    return [
        gxe.ExpectColumnValuesToNotBeInSet(
            column="suppressed_cells",
            value_set=[1],
            meta=_rule(
                "no_cell_recoverable_by_subtraction",
                "no group of public cells tied by a total may have exactly one suppressed "
                "cell (it would equal the total minus the published cells)",
                "同一合计关系内不得仅有一个保密单元格（否则可由合计相减得出）",
            ),
        ),
    ]


def _reconciliation_expectations(gxe: ModuleType) -> list:
    from great_expectations.expectations.row_conditions import Column

    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1,
            # No checks at all means nothing was reconciled, not that everything adds up.
            meta=_rule(
                "reconciliation_not_empty",
                "cross-level totals must have been checked",
                "须已核对跨层级合计",
            ),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="difference",
            min_value=-MONEY_TOLERANCE,
            max_value=MONEY_TOLERANCE,
            row_condition=Column("measure_kind") == "money",
            meta=_rule(
                "totals_reconcile_money",
                "amounts must add up across levels (within 0.01 CNY)",
                "金额须跨层级相加一致(误差0.01元内)",
            ),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="difference",
            min_value=0,
            max_value=0,
            row_condition=Column("measure_kind") == "count",
            meta=_rule(
                "totals_reconcile_count",
                "counts must add up across levels exactly",
                "计数须跨层级相加完全一致",
            ),
        ),
    ]


def _national_change_expectations(gxe: ModuleType) -> list:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="relative_change",
            min_value=-MAX_RELATIVE_CHANGE,
            max_value=MAX_RELATIVE_CHANGE,
            severity="warning",
            meta=_rule(
                "national_jump",
                "national total moved more than 50% against the previous month "
                "or the previous publication",
                "全国合计较上月或上次发布变动超过50%",
            ),
        ),
    ]


def _expected_regions_expectations(gxe: ModuleType) -> list:
    return [
        gxe.ExpectTableRowCountToBeBetween(
            min_value=1,
            meta=_rule(
                "regions_checked", "published regions must have been checked", "须已核对发布地区"
            ),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="region_status",
            value_set=[REGION_AS_EXPECTED],
            meta=_rule(
                "regions_as_expected",
                "a complete regional table must have a row for every expected region (the "
                "nation, every province, every prefecture with an expected reporter or data) "
                "and breakdown value, and no other region",
                "完整地区表须包含每个应有地区（全国、各省、有应报机构或数据的地市）及分类的行，且不得有其他地区",
            ),
        ),
    ]


def _distribution_drift_expectations(gxe: ModuleType) -> list:
    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="drift",
            min_value=0,
            max_value=MAX_DISTRIBUTION_DRIFT,
            severity="warning",
            meta=_rule(
                "distribution_drift",
                "more than 10% of a national total moved between provinces since the last "
                "publication of the period",
                "与本期上次发布相比，全国合计中超过10%在各省之间发生转移",
            ),
        ),
    ]


def _suite_json(gx: ModuleType, name: str, severity: str, expectations: list) -> dict:
    suite = gx.ExpectationSuite(name=name, expectations=expectations, meta={"severity": severity})
    document = suite.to_json_dict()
    # Ids are assigned when a suite joins a context; a checked-in file has none.
    document.pop("id", None)
    for expectation in document["expectations"]:
        expectation.pop("id", None)
    return document


def build_suites() -> dict[str, dict]:
    """The gate's suites as GX JSON documents, by suite name, generated from tables.py."""
    gx = _import_gx()
    import great_expectations.expectations as gxe

    suites = {}
    for table in tables.PUBLISHED_TABLES:
        blocking = _structure_expectations(gxe, table) + _code_expectations(gxe, table)
        blocking += _measure_expectations(gxe, table) + _floor_expectations(gxe, table)
        suites[f"{table.name}.{BLOCKING}"] = _suite_json(
            gx, f"{table.name}.{BLOCKING}", BLOCKING, blocking
        )
        if table.rates_warn_above_one:
            suites[f"{table.name}.{WARNING}"] = _suite_json(
                gx, f"{table.name}.{WARNING}", WARNING, _rate_expectations(gxe, table)
            )
    suites[RECONCILIATION_SUITE] = _suite_json(
        gx, RECONCILIATION_SUITE, BLOCKING, _reconciliation_expectations(gxe)
    )
    suites[NATIONAL_CHANGE_SUITE] = _suite_json(
        gx, NATIONAL_CHANGE_SUITE, WARNING, _national_change_expectations(gxe)
    )
    suites[DISTRIBUTION_DRIFT_SUITE] = _suite_json(
        gx, DISTRIBUTION_DRIFT_SUITE, WARNING, _distribution_drift_expectations(gxe)
    )
    suites[EXPECTED_REGIONS_SUITE] = _suite_json(
        gx, EXPECTED_REGIONS_SUITE, BLOCKING, _expected_regions_expectations(gxe)
    )
    suites[DISCLOSURE_CELLS_SUITE] = _suite_json(
        gx, DISCLOSURE_CELLS_SUITE, BLOCKING, _disclosure_cells_expectations(gxe)
    )
    suites[DISCLOSURE_GROUPS_SUITE] = _suite_json(
        gx, DISCLOSURE_GROUPS_SUITE, BLOCKING, _disclosure_groups_expectations(gxe)
    )
    return suites


def suite_file_text(document: dict) -> str:
    """The exact text of a checked-in suite file (stable, so diffs show rule changes)."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_suites(expectations_dir: Path = DEFAULT_EXPECTATIONS_DIR) -> list[Path]:
    """Regenerate the checked-in suite files from tables.py."""
    expectations_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, document in build_suites().items():
        path = expectations_dir / f"{name}.json"
        path.write_text(suite_file_text(document), encoding="utf-8")
        written.append(path)
    return written


class SuiteFileError(Exception):
    """A suite file is missing or does not load as written."""


def _load_suite(gx: ModuleType, expectations_dir: Path, name: str) -> Any:
    path = expectations_dir / f"{name}.json"
    if not path.is_file():
        raise SuiteFileError(f"suite file {path} is missing")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        suite = gx.ExpectationSuite(**document)
    except (ValueError, TypeError) as error:
        raise SuiteFileError(f"suite file {path} does not load: {error}") from error
    # GX logs and *drops* an expectation it cannot parse (a typo in its type, a bad
    # kwarg) instead of raising; a gate with a silently missing rule cannot be trusted.
    if len(suite.expectations) != len(document.get("expectations", [])):
        raise SuiteFileError(
            f"suite file {path}: {len(document['expectations']) - len(suite.expectations)} "
            "expectation(s) are not valid GX expectations (see the log)"
        )
    if suite.meta.get("severity") not in (BLOCKING, WARNING):
        raise SuiteFileError(f"suite file {path}: meta.severity must be blocking or warning")
    return suite


# ---------------------------------------------------------------------------------------
# Reading the staged publication
# ---------------------------------------------------------------------------------------


def _table_path(publication_dir: Path, table: str, scope: str = "internal") -> Path:
    return publication_dir / scope / f"{table}.parquet"


def _read_table(path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """The table as a DataFrame, and each additive-capable column's kind (count or money).

    The kind comes from the Parquet schema, not pandas dtypes: an integer column with a
    null reads as float in pandas but is still a count that must reconcile exactly.
    Decimal money is read as float: GX ranges and one-cent tolerances do not need exact
    decimals, and floats keep the frames vectorised.
    """
    # One file, read as such: no dataset discovery or partition guessing from the path.
    arrow_table = pq.ParquetFile(path).read()
    kinds = {}
    for field in arrow_table.schema:
        if pa.types.is_integer(field.type):
            kinds[field.name] = "count"
        elif pa.types.is_decimal(field.type) or pa.types.is_floating(field.type):
            kinds[field.name] = "money"
    as_float = [
        pa.field(field.name, pa.float64()) if pa.types.is_decimal(field.type) else field
        for field in arrow_table.schema
    ]
    frame = arrow_table.cast(pa.schema(as_float)).to_pandas()
    return frame, kinds


# ---------------------------------------------------------------------------------------
# Derived frames: cross-level reconciliation and national changes
# ---------------------------------------------------------------------------------------


def _query(sql: str, **frames: pd.DataFrame) -> pd.DataFrame:
    """``sql`` run by DuckDB over the given frames (by name): the group-bys and joins of
    a national table (half a million rows, a million and a half checks) take a fraction
    of pandas' time."""
    con = connect_duckdb()
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        # Through Arrow: DuckDB's own DataFrame conversion of strings is several times
        # slower. Text as categories: GX filters a derived frame by row condition (money or
        # count) and copies the matching rows, which for 1.7M reconciliation checks took
        # ~2 s with Arrow-backed strings and takes ~0.4 s with categories.
        return con.sql(sql).to_arrow_table().to_pandas(strings_to_categorical=True)
    finally:
        con.close()


def _measures(table: tables.PublishedTable, *frames: pd.DataFrame) -> list[str]:
    """The table's additive measures that every one of ``frames`` has."""
    return [m for m in table.additive if all(m in frame.columns for frame in frames)]


def _names(columns) -> str:
    return ", ".join(f'"{column}"' for column in columns)


# The measures' values as exact decimals: money is DECIMAL(18,2) and counts are integers
# (DESIGN), read here as float; back in cents, their sums are exact, so a clean national
# table reconciles to a difference of exactly zero instead of float noise.
EXACT = "decimal(38, 2)"


def _case(column: str, values: dict[str, str], default: str) -> str:
    whens = " ".join(f"when '{key}' then {value}" for key, value in values.items())
    return f"case {column} {whens} else {default} end" if whens else default


def _struct(fields: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{name}': {value}" for name, value in fields.items()) + "}"


def _wide_sums(
    level: str, by: list[str], region: str, measures: list[str], frame: str = "frame"
) -> str:
    """Per ``by`` and region (``region`` is the SQL that names it), each measure's sum
    over ``level``'s rows of ``frame`` (``EXACT``; 0 when all are null)."""
    sums = ", ".join(f'coalesce(sum("{m}"::{EXACT}), 0) as "{m}"' for m in measures)
    return f"""
        select {_names(by)}, {region} as region_code, {sums}
        from {frame} where level = '{level}' group by all"""


def _national_totals(frame: str, by: list[str], measures: list[str]) -> str:
    """``frame``'s national totals, one row per ``by`` and measure: ``by``, measure, value
    (``EXACT``)."""
    if not measures:
        return (
            f"select {_names(by)}, null::varchar as measure, null::{EXACT} as value "
            f"from {frame} where false"
        )
    cells = ", ".join(_struct({"measure": f"'{m}'", "value": f'"{m}"'}) for m in measures)
    totals = _wide_sums("national", by, "null", measures, frame)
    return f"select {_names(by)}, unnest([{cells}], recursive := true) from ({totals})"


def _compare(
    parent: str, children: str, check: str, by: list[str], order: int, measures: list[str]
) -> str:
    """Parent value vs sum of children, one row per group and measure. A full outer join
    with zeros makes a parent without children (or children whose parent row is missing)
    a difference instead of a silently skipped group."""
    keys = [*by, "region_code"]
    columns = ", ".join(f'coalesce(p."{k}", c."{k}") as "{k}"' for k in keys)
    matched = " and ".join(f'p."{k}" is not distinct from c."{k}"' for k in keys)
    cells = ", ".join(
        _struct(
            {
                "measure": f"'{m}'",
                "measure_order": str(i),
                "parent_value": f'coalesce(p."{m}", 0)',
                "children_sum": f'coalesce(c."{m}", 0)',
            }
        )
        for i, m in enumerate(measures)
    )
    return f"""
        select {order} as check_order, '{check}' as "check", {columns},
               unnest([{cells}], recursive := true)
        from ({parent}) as p full outer join ({children}) as c on {matched}"""


def build_reconciliation(
    frame: pd.DataFrame, table: tables.PublishedTable, kinds: dict[str, str]
) -> pd.DataFrame:
    """One row per (check, period, breakdown, parent region, measure) with its difference.

    Checks: national = Σ provinces, national = Σ prefectures, and for every province,
    province = Σ its prefectures (grouped by the prefectures' parent_region_code).
    """
    measures = _measures(table, frame)
    by = ["period", *table.breakdown]
    columns = ["check", *by, "region_code", "measure", "parent_value", "children_sum",
               "measure_kind", "difference"]  # fmt: skip
    if not measures:
        return pd.DataFrame(columns=columns)
    nation = f"'{tables.NATIONAL_CODE}'"
    # (check, (parent level, its region), (children's level, the region they add up to))
    equations = [
        ("national = sum of provinces", ("national", nation), ("province", nation)),
        ("national = sum of prefectures", ("national", nation), ("prefecture", nation)),
        (
            "province = sum of prefectures",
            ("province", "region_code"),
            ("prefecture", "parent_region_code"),
        ),
    ]
    checks = " union all ".join(
        _compare(
            _wide_sums(parent[0], by, parent[1], measures),
            _wide_sums(children[0], by, children[1], measures),
            check,
            by,
            order,
            measures,
        )
        for order, (check, parent, children) in enumerate(equations)
    )
    kind = _case("measure", {m: f"'{kinds.get(m, 'money')}'" for m in measures}, "'money'")
    return _query(
        f"""
        select "check", {_names(by)}, region_code, measure,
               parent_value::double as parent_value, children_sum::double as children_sum,
               {kind} as measure_kind, (parent_value - children_sum)::double as difference
        from ({checks})
        order by check_order, measure_order, {_names(by)}, region_code
        """,
        frame=frame,
    )


def _relative_change(current: str, reference: str) -> str:
    """From zero to something is a jump of unbounded size; zero to zero is no change."""
    return f"""case when {reference} <> 0 then round(({current} - {reference}) / {reference}, 6)
                    when {current} <> 0 then 'inf'::double else 0 end"""


def build_national_change(
    staged: pd.DataFrame, previous: pd.DataFrame | None, table: tables.PublishedTable
) -> pd.DataFrame:
    """National totals of additive measures against the previous month and, when the
    same period was published before, against that publication.

    The previous month is taken from the staged data when it holds that month, else from
    the previous publication.
    """
    previous = staged.iloc[0:0] if previous is None else previous
    by = ["period", *table.breakdown]
    keys = [*table.breakdown, "measure"]
    same = " and ".join(f'c."{k}" is not distinct from r."{k}"' for k in keys)
    same_period = " and ".join(f'c."{k}" is not distinct from r."{k}"' for k in ["period", *keys])
    return _query(
        f"""
        with current as ({_national_totals("staged", by, _measures(table, staged))}),
        earlier as ({_national_totals("previous", by, _measures(table, previous))}),
        pool as (
            select * from current
            union all
            (select r.* from earlier as r anti join current as c on {same_period})
        ),
        compared as (
            select 0 as comparison_order, 'previous month' as comparison, c.*,
                   r.period as reference_period, r.value as reference_value
            from current as c join pool as r on {same} and r.period = strftime(
                try_strptime(c.period, '%Y-%m') - interval 1 month, '%Y-%m')
            union all
            select 1, 'previous publication', c.*, r.period, r.value
            from current as c join earlier as r on {same} and c.period = r.period
        )
        select {_names(by)}, measure, value::double as current_value, reference_period,
               reference_value::double as reference_value, comparison,
               {_relative_change("value", "reference_value")} as relative_change
        from compared
        order by comparison_order, measure, {_names(by)}
        """,
        staged=staged,
        previous=previous,
    )


def build_region_check(
    published: pd.DataFrame,
    expected: pd.DataFrame,
    table: tables.PublishedTable,
    levels: tuple[str, ...] = tables.LEVELS,
) -> pd.DataFrame:
    """One row per (period, level, region, breakdown value) published or expected, with
    ``region_status``: as expected, missing (expected, not published) or unexpected.

    ``expected`` has the expected regions' (period, level, region_code); each must carry
    every breakdown value the table publishes (a region missing one bucket is missing).
    """
    keys = ["period", "level", "region_code"]
    cell = [*keys, *table.breakdown]
    expected = expected.loc[expected["level"].isin(levels), keys].astype(str).drop_duplicates()
    if table.breakdown:
        values = published[list(table.breakdown)].astype(str).drop_duplicates()
        expected = expected.merge(values, how="cross")
    merged = (
        published[cell]
        .astype(str)
        .drop_duplicates()
        .merge(expected, on=cell, how="outer", indicator=True)
    )
    status = {"both": REGION_AS_EXPECTED, "left_only": "unexpected", "right_only": "missing"}
    merged["region_status"] = merged.pop("_merge").map(status).astype(str)
    return merged.sort_values(cell, ignore_index=True)


def _province_shares(frame: str, by: list[str], measures: list[str]) -> str:
    """Per ``by`` and province, each measure's share of the provinces' total (0 when the
    total is 0; a null value counts as 0)."""
    shares = ", ".join(
        f'coalesce("{m}" / nullif(sum("{m}") over (partition by {_names(by)}), 0), 0) as "{m}"'
        for m in measures
    )
    values = ", ".join(f'coalesce("{m}"::{EXACT}, 0) as "{m}"' for m in measures)
    return f"""
        select {_names(by)}, region_code, {shares}
        from (select {_names(by)}, region_code, {values} from {frame} where level = 'province')"""


def build_distribution_drift(
    staged: pd.DataFrame, previous: pd.DataFrame, table: tables.PublishedTable
) -> pd.DataFrame:
    """Per (period, breakdown, measure): how far the provinces' shares of the national
    total moved since the last publication of the same period, as the total variation
    distance (half the sum of the absolute share changes: 0 = same distribution, 1 =
    entirely different provinces), with the province that moved most."""
    by = ["period", *table.breakdown]
    measures = _measures(table, staged, previous)
    if not measures:
        return pd.DataFrame(columns=[*by, *DISTRIBUTION_DRIFT_INDEX])
    same_group = " and ".join(f'n."{k}" is not distinct from b."{k}"' for k in by)
    shared_group = " and ".join(
        f'coalesce(n."{k}", b."{k}") is not distinct from s."{k}"' for k in by
    )
    cells = ", ".join(
        _struct(
            {
                "measure": f"'{m}'",
                "share_now": f'coalesce(n."{m}", 0)',
                "share_before": f'coalesce(b."{m}", 0)',
            }
        )
        for m in measures
    )
    return _query(
        f"""
        with now as ({_province_shares("staged", by, measures)}),
        before as (
            {_province_shares("previous", by, measures)}
            where period in (select period from staged)
        ),
        -- Only what both versions publish is compared (a new bucket has no earlier
        -- distribution).
        shared as (
            select distinct {_names(by)} from now
            intersect select distinct {_names(by)} from before
        ),
        cells as (
            select {", ".join(f'coalesce(n."{k}", b."{k}") as "{k}"' for k in by)},
                   coalesce(n.region_code, b.region_code) as region_code,
                   unnest([{cells}], recursive := true)
            from now as n full outer join before as b
                on {same_group} and n.region_code = b.region_code
            semi join shared as s on {shared_group}
        ),
        moved as (select *, abs(share_now - share_before) as moved from cells)
        select {_names(by)}, measure,
               round(sum(moved) / 2, 6) as drift,
               -- the province that moved most (the first by code among equals)
               arg_min(region_code, (-moved, region_code)) as most_moved_region,
               round(arg_min(share_now, (-moved, region_code)), 6) as share_now,
               round(arg_min(share_before, (-moved, region_code)), 6) as share_before
        from moved
        group by all
        order by all
        """,
        staged=staged,
        previous=previous,
    )


# ---------------------------------------------------------------------------------------
# Turning GX results into failures and report rows
# ---------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """JSON-ready copy of a GX result value (numpy scalars, decimals, tuples, inf)."""
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _columns(kwargs: dict) -> list[str]:
    if "column_list" in kwargs:
        return list(kwargs["column_list"])
    return [kwargs[name] for name in ("column", "column_A", "column_B") if name in kwargs]


def _missing_columns(result: dict) -> list[str]:
    return (result.get("details") or {}).get("mismatched", {}).get("missing", [])


def _examples(result: dict) -> list:
    rows = result.get("partial_unexpected_index_list") or result.get("partial_unexpected_list")
    return _plain(list(rows or _missing_columns(result))[:EXAMPLES_PER_FAILURE])


def _message(description: str, result: dict, exception: dict | None) -> str:
    if exception and exception.get("raised_exception"):
        first_line = str(exception.get("exception_message") or "").splitlines()[:1]
        return f"{description}: could not be evaluated ({''.join(first_line)})"
    if "unexpected_count" in result:
        return (
            f"{description}: {result['unexpected_count']} of {result.get('element_count')} "
            "rows fail"
        )
    if _missing_columns(result):
        return f"{description}: missing {', '.join(_missing_columns(result))}"
    if "observed_value" in result:
        return f"{description}: observed {_plain(result['observed_value'])}"
    return description


def _describe(dataset: _Dataset, suite_name: str, severity: str, outcome: Any) -> dict:
    config = outcome.expectation_config
    meta = config.meta or {}
    result = outcome.result or {}
    description = meta.get("description", config.type)
    return {
        "table": dataset.table,
        "dataset": dataset.name,
        "suite": suite_name,
        "severity": severity,
        "expectation_type": config.type,
        "rule": meta.get("rule", config.type),
        "columns": _columns(config.kwargs),
        "success": bool(outcome.success),
        "message": _message(description, result, _exception(outcome)),
        "message_zh": meta.get("description_zh", ""),
        "element_count": result.get("element_count"),
        "unexpected_count": result.get("unexpected_count"),
        "observed_value": result.get("observed_value"),
        "unexpected_examples": [] if outcome.success else _examples(result),
    }


def _exception(outcome: Any) -> dict | None:
    info = outcome.exception_info or {}
    if "raised_exception" in info:
        return info
    # When a metric fails GX keys the info by metric id; any raised one counts.
    for nested in info.values():
        if isinstance(nested, dict) and nested.get("exception_message"):
            return {"raised_exception": True, **nested}
    return None


def _gate_failure(table: str, suite: str, check: str, message: str, examples=()) -> dict:
    """A failure found outside GX: the gate could not look, so it must not pass."""
    return {
        "table": table,
        "dataset": table,
        "suite": suite,
        "severity": BLOCKING,
        "expectation_type": check,
        "rule": check,
        "columns": [],
        "success": False,
        "message": message,
        "message_zh": "质量门无法完成该项检查",
        "element_count": None,
        "unexpected_count": None,
        "observed_value": None,
        "unexpected_examples": _plain(list(examples)),
    }


# ---------------------------------------------------------------------------------------
# Running the checkpoints
# ---------------------------------------------------------------------------------------


class _GateRun:
    """One gate run: an ephemeral GX context, the suites, and what they found."""

    def __init__(
        self,
        gx: ModuleType,
        expectations_dir: Path,
        periods: list[str],
        coverage_floor: float,
        audit: pd.DataFrame | None,
        expected_regions: pd.DataFrame | None = None,
    ):
        self.gx = gx
        self.coverage_floor = coverage_floor
        # (period, level, region_code) every complete regional table must have (None: the
        # candidate warehouse did not say, so those tables fail).
        self.expected_regions = expected_regions
        # Contributor counts and shares behind the public cells (None: not available).
        self.audit = audit
        self.publics: dict[str, pd.DataFrame] = {}
        self.context = _ephemeral_context(gx)
        self.datasource = self.context.data_sources.add_pandas("staged_publication")
        self.expectations_dir = expectations_dir
        self.periods = list(periods)
        self.suites: dict[str, Any] = {}
        self.outcomes: list[dict] = []
        self.notes: list[str] = []

    def suite(self, name: str) -> Any:
        if name not in self.suites:
            loaded = _load_suite(self.gx, self.expectations_dir, name)
            self.suites[name] = self.context.suites.add(loaded)
        return self.suites[name]

    def validate(self, dataset: _Dataset) -> None:
        """Run one checkpoint over the dataset; a crash becomes a blocking failure."""
        try:
            checkpoint = self._checkpoint(dataset)
            result = checkpoint.run(
                batch_parameters={"dataframe": dataset.frame},
                expectation_parameters={
                    "periods": self.periods,
                    "coverage_floor": self.coverage_floor,
                },
            )
        except SuiteFileError as error:
            suites = ",".join(dataset.suites)
            self.outcomes.append(_gate_failure(dataset.table, suites, "suite_file", str(error)))
            return
        except Exception as error:  # any crash must fail the gate, visibly
            logger.exception("gate: checkpoint over %s failed to run", dataset.name)
            self.outcomes.append(
                _gate_failure(
                    dataset.table,
                    ",".join(dataset.suites),
                    "checkpoint_run",
                    f"validating {dataset.name} raised {type(error).__name__}: {error}",
                )
            )
            return
        self._collect(dataset, result)

    def _checkpoint(self, dataset: _Dataset) -> Any:
        gx = self.gx
        suites = [self.suite(name) for name in dataset.suites]
        asset = self.datasource.add_dataframe_asset(dataset.name)
        batch = asset.add_batch_definition_whole_dataframe("whole_table")
        definitions = [
            self.context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=f"{dataset.name}:{suite.name}", data=batch, suite=suite
                )
            )
            for suite in suites
        ]
        index_columns = [name for name in dataset.index_columns if name in dataset.frame.columns]
        checkpoint = gx.Checkpoint(
            name=dataset.name,
            validation_definitions=definitions,
            actions=[],
            result_format={
                "result_format": "SUMMARY",
                "partial_unexpected_count": EXAMPLES_PER_FAILURE,
                "unexpected_index_column_names": index_columns,
            },
        )
        return self.context.checkpoints.add(checkpoint)

    def _collect(self, dataset: _Dataset, result: Any) -> None:
        for suite_result in result.run_results.values():
            suite_name = suite_result.suite_name
            severity = self.suites[suite_name].meta["severity"]
            for outcome in suite_result.results:
                self.outcomes.append(_describe(dataset, suite_name, severity, outcome))
            expected = len(self.suites[suite_name].expectations)
            if len(suite_result.results) != expected:
                # A rule that produced no result was not checked; never count it as passed.
                self.outcomes.append(
                    _gate_failure(
                        dataset.table,
                        suite_name,
                        "all_expectations_evaluated",
                        f"{suite_name} over {dataset.name}: {len(suite_result.results)} results "
                        f"for {expected} expectations",
                    )
                )


def _read_staged(run: _GateRun, staged_dir: Path, table: str, scope: str):
    """The staged file of ``table`` in ``scope`` as (frame, kinds), or None after recording
    a blocking failure for a missing or unreadable file."""
    path = _table_path(staged_dir, table, scope)
    if not path.is_file():
        run.outcomes.append(
            _gate_failure(
                table,
                "publication_files",
                "file_exists",
                f"{path.relative_to(staged_dir)} is missing from the staged publication",
                [str(path)],
            )
        )
        return None
    try:
        return _read_table(path)
    except (OSError, pa.ArrowException) as error:
        run.outcomes.append(
            _gate_failure(
                table, "publication_files", "file_readable", f"{path} is unreadable: {error}"
            )
        )
        return None


def _table_datasets(run: _GateRun, staged_dir: Path, previous_dir: Path | None):
    """Yield the datasets of every table; unreadable tables become blocking failures."""
    # (table, scope, frame, levels) of every complete regional file: one region check.
    complete = []
    for table in tables.PUBLISHED_TABLES:
        staged = _read_staged(run, staged_dir, table.name, "internal")
        if staged is not None:
            yield from _datasets_for(run, table, *staged, previous_dir)
            complete.append((table, "internal", staged[0], tables.LEVELS))
        if table.public:
            public = _read_staged(run, staged_dir, table.name, "public")
            if public is not None:
                run.publics[table.name] = public[0]
                yield from _derived(run, table.name, "disclosure_cells", *_cells_check(run, table))
                complete.append((table, "public", public[0], tables.PUBLIC_LEVELS))
    yield from _region_check(run, [entry for entry in complete if entry[0].every_expected_region])
    if run.publics:
        yield from _derived(
            run,
            "public",
            "disclosure_groups",
            DISCLOSURE_GROUPS_SUITE,
            DISCLOSURE_GROUPS_INDEX,
            lambda: disclosure.build_groups(run.publics),
        )


def _region_check(run: _GateRun, files: list):
    """One dataset over every complete regional file (GX's cost is per checkpoint):
    ``files`` are (table, scope, frame, levels)."""
    if not files:
        return
    if run.expected_regions is None:
        run.outcomes.append(
            _gate_failure(
                REGIONS_DATASET,
                EXPECTED_REGIONS_SUITE,
                "expected_regions_available",
                f"no expected regions ({tables.EXPECTED_REGIONS} in the candidate warehouse) "
                "to check the regional tables against",
            )
        )
        return
    breakdowns = dict.fromkeys(column for table, *_ in files for column in table.breakdown)
    yield from _derived(
        run,
        REGIONS_DATASET,
        "check",
        EXPECTED_REGIONS_SUITE,
        ("table", *EXPECTED_REGIONS_INDEX, *breakdowns),
        lambda: pd.concat(
            [
                build_region_check(frame, run.expected_regions, table, levels).assign(
                    table=table.name, scope=scope
                )
                for table, scope, frame, levels in files
            ],
            ignore_index=True,
        ),
    )


def _cells_check(run: _GateRun, table: tables.PublishedTable):
    if run.audit is None:
        # Without contributor counts no cell is known to be safe: all of them count as
        # under the thresholds, so any published cell fails, and the cause is named.
        run.outcomes.append(
            _gate_failure(
                table.name,
                DISCLOSURE_CELLS_SUITE,
                "disclosure_audit_available",
                f"no disclosure audit (candidate warehouse) to check public {table.name} against",
            )
        )
    audit = run.audit if run.audit is not None else pd.DataFrame(columns=disclosure.AUDIT_COLUMNS)
    index = (*disclosure.cell_keys(table), *DISCLOSURE_CELLS_INDEX)
    return (
        DISCLOSURE_CELLS_SUITE,
        index,
        lambda: disclosure.build_cells(
            run.publics[table.name], audit, table, disclosure.thresholds()
        ),
    )


def _derived(run: _GateRun, table: str, kind: str, suite: str, index: tuple, build):
    """Yield the dataset ``build()`` returns; a failure to build it is a blocking failure."""
    try:
        frame = build()
    except Exception as error:  # e.g. a missing column: report it, never mask the rest
        run.outcomes.append(
            _gate_failure(
                table,
                suite,
                f"build_{kind}",
                f"could not build the {kind} check of {table}: {type(error).__name__}: {error}",
            )
        )
        return
    if frame is not None:
        yield _Dataset(f"{table}.{kind}", table, frame, (suite,), index)


def _datasets_for(run, table, frame, kinds, previous_dir):
    suites = [name for name in required_suite_names() if name.startswith(f"{table.name}.")]
    yield _Dataset(table.name, table.name, frame, tuple(suites), table.key)
    if not table.regional:
        return  # no levels: nothing to reconcile or to compare at national level
    prefix = ("check", "comparison", "period", *table.breakdown)
    yield from _derived(
        run,
        table.name,
        "reconciliation",
        RECONCILIATION_SUITE,
        (*prefix, *RECONCILIATION_INDEX),
        lambda: build_reconciliation(frame, table, kinds),
    )
    yield from _derived(
        run,
        table.name,
        "national_change",
        NATIONAL_CHANGE_SUITE,
        (*prefix, *NATIONAL_CHANGE_INDEX),
        lambda: _change_frame(run, table, frame, previous_dir),
    )
    yield from _derived(
        run,
        table.name,
        "distribution_drift",
        DISTRIBUTION_DRIFT_SUITE,
        ("period", *table.breakdown, *DISTRIBUTION_DRIFT_INDEX),
        lambda: _drift_frame(table, frame, previous_dir),
    )


def _change_frame(run: _GateRun, table, frame: pd.DataFrame, previous_dir: Path | None):
    previous = None
    if previous_dir is not None:
        path = _table_path(previous_dir, table.name)
        if path.is_file():
            previous, _ = _read_table(path)
        else:
            run.notes.append(f"{table.name}: no previous publication at {path} to compare with")
    change = build_national_change(frame, previous, table)
    if change.empty:
        run.notes.append(
            f"{table.name}: no previous month or previous publication to compare national "
            "totals with"
        )
        return None
    return change


def _drift_frame(table, frame: pd.DataFrame, previous_dir: Path | None):
    """Drift against the last publication of the same period; None (nothing to check)
    on a period's first publication."""
    path = _table_path(previous_dir, table.name) if previous_dir is not None else None
    if path is None or not path.is_file():
        return None
    previous, _ = _read_table(path)
    drift = build_distribution_drift(frame, previous, table)
    return None if drift.empty else drift


# ---------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------


def _report(run: _GateRun, staged_dir: Path, previous_dir: Path | None) -> dict:
    failures = [o for o in run.outcomes if not o["success"]]
    blocking = [o for o in failures if o["severity"] == BLOCKING]
    warnings = [o for o in failures if o["severity"] == WARNING]
    by_table: dict[str, list[dict]] = {}
    for outcome in run.outcomes:
        by_table.setdefault(outcome["table"], []).append(outcome)
    return {
        "passed": not blocking,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "great_expectations_version": run.gx.__version__,
        "periods": run.periods,
        "staged_dir": str(staged_dir),
        "previous_dir": str(previous_dir) if previous_dir else None,
        "counts": {
            "expectations": len(run.outcomes),
            "succeeded": len(run.outcomes) - len(failures),
            "blocking_failures": len(blocking),
            "warnings": len(warnings),
        },
        "blocking_failures": blocking,
        "warnings": warnings,
        "notes": run.notes,
        "tables": by_table,
    }


_HTML_STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #bbb; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eee; }
.pass { color: #176317; } .fail { color: #a31515; } .warn { color: #8a5a00; }
code { font-size: 90%; }
"""


def _html_rows(outcomes: list[dict], with_status: bool) -> str:
    rows = []
    for outcome in outcomes:
        status = ""
        if with_status:
            css, label = (
                ("pass", "✓")
                if outcome["success"]
                else (("fail", "✗") if outcome["severity"] == BLOCKING else ("warn", "!"))
            )
            status = f'<td class="{css}">{label}</td>'
        examples = json.dumps(outcome["unexpected_examples"], ensure_ascii=False)
        rows.append(
            "<tr>"
            + status
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (
                    outcome["table"],
                    outcome["suite"],
                    outcome["expectation_type"],
                    ", ".join(outcome["columns"]),
                )
            )
            + f"<td>{html.escape(outcome['message'])}<br>{html.escape(outcome['message_zh'])}</td>"
            + f"<td><code>{html.escape(examples)}</code></td></tr>"
        )
    return "\n".join(rows)


def _html_table(title: str, outcomes: list[dict], with_status: bool = False) -> str:
    if not outcomes:
        return f"<h2>{html.escape(title)}</h2><p>None / 无</p>"
    status = "<th>OK</th>" if with_status else ""
    header = (
        f"<tr>{status}<th>Table 表</th><th>Suite 规则集</th><th>Expectation 规则</th>"
        "<th>Columns 列</th><th>Message 说明</th><th>Examples 示例</th></tr>"
    )
    body = _html_rows(outcomes, with_status)
    return f"<h2>{html.escape(title)}</h2><table>{header}{body}</table>"


def _html_report(report: dict) -> str:
    verdict = (
        '<p class="pass"><strong>PASSED 通过</strong></p>'
        if report["passed"]
        else '<p class="fail"><strong>FAILED 未通过</strong> — not published 不予发布</p>'
    )
    counts = report["counts"]
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in report["notes"])
    sections = [
        _html_table("Blocking failures 阻断性问题", report["blocking_failures"]),
        _html_table("Warnings 警告", report["warnings"]),
        *(
            _html_table(f"{table} — all expectations 全部规则", outcomes, with_status=True)
            for table, outcomes in report["tables"].items()
        ),
    ]
    return f"""<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<title>Quality gate 质量门 — {html.escape(", ".join(report["periods"]))}</title>
<style>{_HTML_STYLE}</style></head><body>
<h1>Quality gate 发布质量门</h1>
{verdict}
<p>Periods 统计期: {html.escape(", ".join(report["periods"]))} ·
Expectations 规则数: {counts["expectations"]} · Succeeded 通过: {counts["succeeded"]} ·
Blocking 阻断: {counts["blocking_failures"]} · Warnings 警告: {counts["warnings"]}</p>
<p>Staged 待发布: <code>{html.escape(report["staged_dir"])}</code> ·
Previous 上次发布: <code>{html.escape(str(report["previous_dir"]))}</code> ·
Great Expectations {html.escape(report["great_expectations_version"])} ·
{html.escape(report["generated_at"])}</p>
<ul>{notes}</ul>
{"".join(sections)}
</body></html>
"""


def _write_reports(report: dict, report_dir: Path) -> tuple[Path, Path]:
    report_dir.mkdir(parents=True, exist_ok=True)
    report_json = report_dir / "gate_report.json"
    report_html = report_dir / "gate_report.html"
    report_json.write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    report_html.write_text(_html_report(report), encoding="utf-8")
    return report_json, report_html


# ---------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------


def read_expected_regions(warehouse: Path, periods: list[str]) -> pd.DataFrame | None:
    """The expected regions of ``periods`` from a (candidate) warehouse, read-only; None
    when it has no such relation (the region check then fails, it never passes unseen)."""
    import duckdb

    con = connect_duckdb(warehouse, read_only=True)
    try:
        return con.execute(
            f"select period, level, region_code from {tables.EXPECTED_REGIONS} "
            "where list_contains(?, period)",
            [list(periods)],
        ).df()
    except duckdb.CatalogException:
        logger.warning("gate: %s has no %s", warehouse, tables.EXPECTED_REGIONS)
        return None
    finally:
        con.close()


def run_gate(
    staged_dir: Path,
    periods: list[str],
    report_dir: Path,
    previous_dir: Path | None = None,
    *,
    expectations_dir: Path = DEFAULT_EXPECTATIONS_DIR,
    warehouse: Path | None = None,
    coverage_floor: float | None = None,
) -> GateResult:
    """Validate the staged publication and write ``gate_report.json`` and ``.html``.

    ``staged_dir`` holds ``internal/<table>.parquet`` for every published table (and
    ``public/<table>.parquet`` for the public ones);
    ``periods`` are the periods it may contain; ``previous_dir`` is the last published
    version (same layout), used for drift warnings. ``warehouse`` is the candidate the
    files were exported from: its ``disclosure_audit`` gives the contributor counts and
    shares the public files are checked against (without it every public table fails), and
    its ``int_expected_regions`` the regions every complete regional table must have.
    ``coverage_floor`` defaults to ``Settings.coverage_floor``.
    Failures are returned, not raised:
    ``passed`` is False when any blocking expectation failed or could not be evaluated.
    """
    staged_dir, report_dir = Path(staged_dir), Path(report_dir)
    previous_dir = Path(previous_dir) if previous_dir is not None else None
    if coverage_floor is None:
        coverage_floor = Settings.from_env().coverage_floor
    audit = expected = None
    if warehouse is not None:
        audit = disclosure.read_audit(Path(warehouse), periods)
        expected = read_expected_regions(Path(warehouse), periods)
    run = _GateRun(_import_gx(), Path(expectations_dir), periods, coverage_floor, audit, expected)
    for dataset in list(_table_datasets(run, staged_dir, previous_dir)):
        run.validate(dataset)
    report = _plain(_report(run, staged_dir, previous_dir))
    report_json, report_html = _write_reports(report, report_dir)
    return _gate_result(report, report_json, report_html)


def _gate_result(report: dict, report_json: Path, report_html: Path) -> GateResult:
    return GateResult(
        passed=report["passed"],
        blocking_failures=report["blocking_failures"],
        warnings=report["warnings"],
        report_json=report_json,
        report_html=report_html,
    )


def read_gate_result(report_json: Path) -> GateResult:
    """The GateResult a gate wrote as ``gate_report.json`` (and its ``.html`` beside it)."""
    report = json.loads(Path(report_json).read_text(encoding="utf-8"))
    return _gate_result(report, Path(report_json), Path(report_json).with_suffix(".html"))


@dataclass(frozen=True)
class GateJob:
    """One staged period's gate: run_gate's arguments."""

    staged_dir: Path
    period: str
    report_dir: Path
    previous_dir: Path | None
    warehouse: Path | None
    coverage_floor: float

    def run(self) -> GateResult:
        return run_gate(
            self.staged_dir,
            [self.period],
            self.report_dir,
            self.previous_dir,
            warehouse=self.warehouse,
            coverage_floor=self.coverage_floor,
        )

    def command(self) -> list[str]:
        """The same gate as a `collectwatch gate` process."""
        command = [sys.executable, "-m", "collectwatch.cli", "gate", str(self.staged_dir)]
        command += ["--period", self.period, "--report-dir", str(self.report_dir)]
        command += ["--coverage-floor", repr(self.coverage_floor)]
        if self.previous_dir is not None:
            command += ["--previous", str(self.previous_dir)]
        if self.warehouse is not None:
            command += ["--warehouse", str(self.warehouse)]
        return command


# `collectwatch gate`'s exit codes: the files passed, or the gate blocked them.
GATE_PASSED, GATE_BLOCKED = 0, 2


def run_gates(jobs: dict[str, GateJob], side_by_side: int) -> dict[str, GateResult]:
    """Each period's gate. GX validates in one Python thread, so with more than one period
    and ``side_by_side`` > 1 each gate runs as a `collectwatch gate` process of its own, at
    most ``side_by_side`` at once (a national month's gate: ~12 s and ~1.4 GB, of which ~3 s
    importing GX; bench/README.md). A process that does not end passed or blocked raises,
    as a gate crashing in this process would: nothing is published."""
    if side_by_side <= 1 or len(jobs) <= 1:
        return {key: job.run() for key, job in jobs.items()}
    with ThreadPoolExecutor(min(side_by_side, len(jobs))) as pool:
        return dict(zip(jobs, pool.map(_run_gate_process, jobs.values()), strict=True))


def _run_gate_process(job: GateJob) -> GateResult:
    report_json = job.report_dir / "gate_report.json"
    report_json.unlink(missing_ok=True)  # never read an earlier attempt's report
    process = subprocess.run(job.command(), capture_output=True, text=True, check=False)
    output = (process.stdout + process.stderr).strip()
    if process.returncode not in (GATE_PASSED, GATE_BLOCKED) or not report_json.exists():
        raise RuntimeError(
            f"the gate of {job.period} ({job.staged_dir}) exited {process.returncode}:\n"
            + output[-3000:]
        )
    logger.info("gate of %s: %s", job.period, output[-3000:])
    return read_gate_result(report_json)


if __name__ == "__main__":
    # Regenerate the checked-in suites after changing tables.py:
    #   python -m collectwatch.gate [EXPECTATIONS_DIR]
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_EXPECTATIONS_DIR
    for written in write_suites(target):
        print(written)
