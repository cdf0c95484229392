"""The monthly bulletin: key figures and charts, rendered on the server to SVG (altair →
vega-lite → vl-convert), so the browser fetches no JavaScript and no CDN is involved.

Every chart reads one published Parquet file of the viewer's own scope folder — the
bulletin of a province shows that province's file, the public bulletin the suppressed
public file. A table that is not published (yet) is left out; suppressed (NULL) cells are
left out of the charts and said so. No maps (published maps of China need approved
boundaries): bar charts only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import altair as alt
import pandas as pd

from collectwatch.contracts import OVERDUE_BUCKETS

LABELS = {
    "zh": {
        "outsourcing": "委外催收余额占逾期余额比例",
        "recovery": "按逾期阶段的当月回收率",
        "complaints": "按类别的催收投诉数",
        "conduct": "违规行为占接触次数的比例",
        "share": "比例",
        "rate": "回收率",
        "bucket": "逾期阶段",
        "region": "地区",
        "channel": "方式",
        "inhouse": "自行催收",
        "outsourced": "委外催收",
        "category": "类别",
        "complaints_axis": "投诉数",
        "rule": "规则",
    },
    "en": {
        "outsourcing": "Outsourced share of overdue balance",
        "recovery": "Recovery rate in the month, by bucket",
        "complaints": "Complaints by category",
        "conduct": "Conduct violations as a share of contacts",
        "share": "Share",
        "rate": "Recovery rate",
        "bucket": "Bucket",
        "region": "Region",
        "channel": "Collected by",
        "inhouse": "In-house",
        "outsourced": "Outsourced",
        "category": "Category",
        "complaints_axis": "Complaints",
        "rule": "Rule",
    },
}

# Key figures of the bulletin: (table, column, zh label, en label, kind).
FIGURES = (
    (
        "outsourcing_by_region",
        "overdue_balance",
        "逾期余额（元）",
        "Overdue balance (CNY)",
        "money",
    ),
    (
        "outsourcing_by_region",
        "outsourced_balance",
        "委外余额（元）",
        "Outsourced balance (CNY)",
        "money",
    ),
    ("outsourcing_by_region", "outsourcing_share", "委外比例", "Outsourcing share", "share"),
    ("outsourcing_by_region", "active_agencies", "活跃催收机构", "Active agencies", "count"),
    ("complaints_by_region", "complaints", "投诉数", "Complaints", "count"),
    ("conduct_compliance", "contacts", "催收接触次数", "Collection contacts", "count"),
)


@dataclass(frozen=True)
class Levels:
    """Which rows a bulletin shows: one region's total and its parts."""

    top: str  # national, or the province of a province scope
    parts: str  # provinces, or that province's prefectures


def levels_for(folder: str) -> Levels:
    if folder.startswith("province="):
        return Levels("province", "prefecture")
    return Levels("national", "province")


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    svg: str
    note: str = ""


@dataclass(frozen=True)
class Figure:
    label: str
    value: str


# Every query reads one published file; Hive partitioning is off, or a
# ``province=<code>/`` folder would turn into a column.
PUBLISHED = "read_parquet($file, hive_partitioning = false)"


def _query(con, parquet: Path, sql: str, **parameters) -> pd.DataFrame:
    """Run ``sql`` (reading ``PUBLISHED``) on a cursor of the portal's DuckDB."""
    cursor = con.cursor()
    try:
        return cursor.execute(sql, {"file": str(parquet), **parameters}).df()
    finally:
        cursor.close()


def _columns(con, parquet: Path) -> set[str]:
    return set(_query(con, parquet, f"select * from {PUBLISHED} limit 0").columns)


def _svg(chart: alt.Chart) -> str:
    import vl_convert

    return vl_convert.vegalite_to_svg(chart.to_dict())


def _name_column(lang: str) -> str:
    return "region_name_zh" if lang == "zh" else "region_name_en"


def outsourcing_chart(con, parquet: Path, levels: Levels, lang: str) -> Chart | None:
    text = LABELS[lang]
    frame = _query(
        con,
        parquet,
        f"select {_name_column(lang)} as region, outsourcing_share::double as share "
        f"from {PUBLISHED} where level = $level and outsourcing_share is not null "
        "order by share desc, region_code",
        level=levels.parts,
    )
    if frame.empty:
        return None
    chart = (
        alt.Chart(frame)
        .mark_bar(color="#2f6f9f")
        .encode(
            x=alt.X("share:Q", title=text["share"], axis=alt.Axis(format="%")),
            y=alt.Y("region:N", sort=None, title=text["region"]),
            tooltip=["region", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(width=460, height=alt.Step(14))
    )
    return Chart("outsourcing", text["outsourcing"], _svg(chart))


def recovery_chart(con, parquet: Path, levels: Levels, lang: str) -> Chart | None:
    text = LABELS[lang]
    frame = _query(
        con,
        parquet,
        f"""
        unpivot (
            select bucket, recovery_rate_inhouse::double as "{text["inhouse"]}",
                   recovery_rate_outsourced::double as "{text["outsourced"]}"
            from {PUBLISHED} where level = $level
        ) on columns(* exclude (bucket)) into name channel value rate
        """,
        level=levels.top,
    )
    frame = frame[frame["bucket"].isin(OVERDUE_BUCKETS) & frame["rate"].notna()]
    if frame.empty:
        return None
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(
                "bucket:N",
                sort=list(OVERDUE_BUCKETS),
                title=text["bucket"],
                axis=alt.Axis(labelAngle=0),
            ),
            xOffset="channel:N",
            y=alt.Y("rate:Q", title=text["rate"], axis=alt.Axis(format="%")),
            color=alt.Color("channel:N", title=text["channel"]),
        )
        .properties(width=460, height=240)
    )
    return Chart("recovery", text["recovery"], _svg(chart))


def complaints_chart(con, parquet: Path, levels: Levels, lang: str) -> Chart | None:
    text = LABELS[lang]
    name = "category_name_zh" if lang == "zh" else "category_name_en"
    frame = _query(
        con,
        parquet,
        f"select {name} as category, sum(complaints)::bigint as complaints "
        f"from {PUBLISHED} where level = $level and complaints is not null "
        "group by all order by complaints desc, category",
        level=levels.top,
    )
    if frame.empty:
        return None
    chart = (
        alt.Chart(frame)
        .mark_bar(color="#a0522d")
        .encode(
            x=alt.X("complaints:Q", title=text["complaints_axis"]),
            y=alt.Y("category:N", sort=None, title=text["category"]),
        )
        .properties(width=460, height=alt.Step(18))
    )
    return Chart("complaints", text["complaints"], _svg(chart))


def conduct_chart(con, parquet: Path, levels: Levels, lang: str) -> Chart | None:
    text = LABELS[lang]
    shares = sorted(c for c in _columns(con, parquet) if c.endswith("_share"))
    if not shares:
        return None
    frame = _query(
        con,
        parquet,
        f"unpivot (select {', '.join(f'{c}::double as {c}' for c in shares)} "
        f"from {PUBLISHED} where level = $level) on columns(*) into name rule value share",
        level=levels.top,
    )
    frame = frame[frame["share"].notna()]
    if frame.empty:
        return None
    frame["rule"] = frame["rule"].str.removesuffix("_share").str.replace("_", " ")
    chart = (
        alt.Chart(frame)
        .mark_bar(color="#8b1a1a")
        .encode(
            x=alt.X("share:Q", title=text["share"], axis=alt.Axis(format=".2%")),
            y=alt.Y("rule:N", sort="-x", title=text["rule"]),
        )
        .properties(width=460, height=alt.Step(18))
    )
    return Chart("conduct", text["conduct"], _svg(chart))


# (table, columns the chart needs, chart): a table without them is left out, not an error.
CHARTS = (
    ("outsourcing_by_region", {"outsourcing_share", "region_name_zh"}, outsourcing_chart),
    (
        "recovery_by_bucket",
        {"bucket", "recovery_rate_inhouse", "recovery_rate_outsourced"},
        recovery_chart,
    ),
    (
        "complaints_by_region",
        {"complaints", "category_name_zh", "category_name_en"},
        complaints_chart,
    ),
    ("conduct_compliance", {"level"}, conduct_chart),
)


def _format(value, kind: str) -> str:
    if value is None or pd.isna(value):
        return "—"
    if kind == "share":
        return f"{float(value):.1%}"
    if kind == "money":
        return f"{float(value):,.2f}"
    return f"{int(value):,}"


def figures(con, datasets: dict[str, Path], levels: Levels, lang: str) -> list[Figure]:
    """The headline numbers of the bulletin's region (suppressed ones shown as —)."""
    found = []
    for table, column, label_zh, label_en, kind in FIGURES:
        parquet = datasets.get(table)
        if parquet is None or column not in _columns(con, parquet):
            continue
        total = _query(
            con,
            parquet,
            f"select sum({column}) from {PUBLISHED} where level = $level"
            if kind != "share"
            else f"select any_value({column}) from {PUBLISHED} where level = $level",
            level=levels.top,
        ).iat[0, 0]
        found.append(Figure(label_zh if lang == "zh" else label_en, _format(total, kind)))
    return found


@functools.lru_cache(maxsize=64)
def bulletin_charts(
    con, datasets: tuple[tuple[str, Path, str], ...], folder: str, lang: str
) -> tuple[Chart, ...]:
    """Charts for the tables present. ``datasets`` holds (table, path, sha256): the hash
    makes the cache key change whenever a new version is published."""
    levels = levels_for(folder)
    paths = {table: path for table, path, _ in datasets}
    charts = []
    for table, needed, draw in CHARTS:
        if table in paths and needed <= _columns(con, paths[table]):
            chart = draw(con, paths[table], levels, lang)
            if chart is not None:
                charts.append(chart)
    return tuple(charts)
