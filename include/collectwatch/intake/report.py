"""Edit reports: JSON for machines, CSV for spreadsheets, HTML for people (bilingual).

Each failing row is listed with its line number, field, value (masked when personal data),
rule id, edit class, the rule's description and the row's key fields; counts per rule
are complete, listed rows are capped per rule with the total stated.
"""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from collectwatch.files import atomic_write_files
from collectwatch.intake.catalogue import RULES
from collectwatch.intake.edits import PERSONAL_DATA_RULES, mask


@dataclass
class EditReport:
    file_name: str
    submission_type: str | None
    submitter_uscc: str | None
    period: str | None
    sha256: str
    status: str = "received"
    submission_id: str | None = None
    rule_counts: dict[str, int] = field(default_factory=dict)
    findings: list[dict] = field(default_factory=list)
    # How the file was read: format, encoding or sheet (see intake.formats).
    source: dict = field(default_factory=dict)

    def add_file_finding(self, rule_id: str, field_name: str, value: str) -> None:
        self.rule_counts[rule_id] = self.rule_counts.get(rule_id, 0) + 1
        self.findings.append(_finding(rule_id, None, field_name, value, {}))

    def classes(self) -> dict[str, int]:
        totals = {"syntactic": 0, "validity": 0, "quality": 0, "macro": 0}
        for rule_id, count in self.rule_counts.items():
            totals[RULES[rule_id].edit_class] += count
        return totals

    def as_dict(self) -> dict:
        return {
            "submission_id": self.submission_id,
            "file": self.file_name,
            "submission_type": self.submission_type,
            "submitter_uscc": self.submitter_uscc,
            "period": self.period,
            "sha256": self.sha256,
            "status": self.status,
            "source": self.source,
            "edit_classes": self.classes(),
            "rules": [
                {
                    "rule_id": rule_id,
                    "edit_class": RULES[rule_id].edit_class,
                    "description_en": RULES[rule_id].description_en,
                    "description_zh": RULES[rule_id].description_zh,
                    "count": count,
                    "listed": sum(1 for f in self.findings if f["rule_id"] == rule_id),
                }
                for rule_id, count in sorted(self.rule_counts.items())
            ],
            "findings": self.findings,
        }


def _finding(rule_id: str, row: int | None, field_name: str, value: str | None, key: dict) -> dict:
    rule = RULES[rule_id]
    return {
        "rule_id": rule_id,
        "edit_class": rule.edit_class,
        "row": row,
        "field": field_name,
        "value": value,
        "key": key,
        "description_en": rule.description_en,
        "description_zh": rule.description_zh,
    }


def collect_row_findings(
    con: duckdb.DuckDBPyConnection, report: EditReport, key: tuple[str, ...], cap: int
) -> None:
    """Add counts per rule and up to ``cap`` listed rows per rule from table ``findings``."""
    counts = con.execute(
        "select rule_id, count(*) from findings group by rule_id order by rule_id"
    ).fetchall()
    if not counts:
        return  # most files: nothing to list (and the listing query costs ~15 ms to plan)
    for rule_id, count in counts:
        report.rule_counts[rule_id] = report.rule_counts.get(rule_id, 0) + count
    # Personal data never leaves DuckDB unmasked: any value or key cell in a cell where
    # V015 / V018 found personal data is masked, and so is a duplicate-key value of such a row.
    personal_data = set(PERSONAL_DATA_RULES) & {rule_id for rule_id, _ in counts}
    if personal_data:
        con.execute(
            "create or replace temp table pii_cells as "
            "select distinct row_no, field from findings where rule_id in "
            f"({', '.join(repr(rule_id) for rule_id in PERSONAL_DATA_RULES)})"
        )

    def masked(column: str, row: str, field: str) -> str:
        if not personal_data:  # nothing to mask (the masking: ~15 ms a file with findings, not 3)
            return column
        return (
            f"case when ({row}, {field}) in (select row_no, field from pii_cells) "
            f"or ({field} like '%+%' and {row} in (select row_no from pii_cells)) "
            f"then {mask(column)} else {column} end"
        )

    key_struct = ", ".join(
        f"'{name}': " + masked('s."' + name + '"', "f.row_no", f"'{name}'") for name in key
    )
    rows = con.execute(
        f"""
        select f.rule_id, f.row_no, f.field, {masked("f.value", "f.row_no", "f.field")},
               {{{key_struct}}} as key
        from findings as f join submission as s on s._row_no = f.row_no
        qualify row_number() over (partition by f.rule_id order by f.row_no, f.field) <= {cap}
        order by f.rule_id, f.row_no, f.field
        """
    ).fetchall()
    report.findings.extend(_finding(*row) for row in rows)


def add_listed_findings(
    report: EditReport, listed: dict[str, tuple[int, list[tuple]]], first: int
) -> None:
    """Add findings counted and listed elsewhere (rule_id -> count and rows as
    ``collect_row_findings`` lists them: a batch's) to the row findings listed from
    ``report.findings[first]`` on, all in (rule, row, field) order as that lists them."""
    for rule_id, (count, rows) in listed.items():
        report.rule_counts[rule_id] = report.rule_counts.get(rule_id, 0) + count
        report.findings.extend(_finding(*row) for row in rows)
    report.findings[first:] = sorted(
        report.findings[first:], key=lambda f: (f["rule_id"], f["row"], f["field"])
    )


def write_report(report: EditReport, folder: Path, name: str) -> Path:
    """Write ``name``.json, .csv and .html; return the JSON path."""
    body = report.as_dict()
    json_path = folder / f"{name}.json"
    atomic_write_files(
        {
            json_path: (json.dumps(body, ensure_ascii=False, indent=2) + "\n").encode(),
            folder / f"{name}.csv": _csv(body).encode("utf-8-sig"),
            folder / f"{name}.html": _html(body).encode(),
        }
    )
    return json_path


CSV_COLUMNS = (
    "rule_id",
    "edit_class",
    "row",
    "field",
    "value",
    "key",
    "description_en",
    "description_zh",
)


def _csv(body: dict) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for finding in body["findings"]:
        cells = [finding[column] for column in CSV_COLUMNS]
        cells[5] = json.dumps(finding["key"], ensure_ascii=False) if finding["key"] else ""
        writer.writerow(["'" + c if isinstance(c, str) and c[:1] in "=+-@" else c for c in cells])
    return out.getvalue()


def _html(body: dict) -> str:
    esc = html.escape
    rules = "".join(
        f"<tr><td>{esc(r['rule_id'])}</td><td>{esc(r['edit_class'])}</td><td>{r['count']}</td>"
        f"<td>{r['listed']}</td><td>{esc(r['description_zh'])}<br>{esc(r['description_en'])}</td></tr>"
        for r in body["rules"]
    )
    rows = "".join(
        f"<tr><td>{esc(f['rule_id'])}</td><td>{f['row'] if f['row'] is not None else ''}</td>"
        f"<td>{esc(f['field'])}</td><td>{esc(str(f['value']))}</td>"
        f"<td>{esc(json.dumps(f['key'], ensure_ascii=False))}</td></tr>"
        for f in body["findings"]
    )
    return (
        "<!doctype html><html lang='zh-CN'><meta charset='utf-8'>"
        f"<title>报送校验报告 Edit report {esc(body['file'])}</title>"
        f"<h1>报送校验报告 Edit report</h1><p>{esc(body['file'])} — "
        f"<strong>{esc(body['status'])}</strong> — sha256 {esc(body['sha256'])}</p>"
        "<h2>规则汇总 Rules</h2><table border='1'><tr><th>Rule</th><th>Class</th>"
        f"<th>Count</th><th>Listed</th><th>说明 Description</th></tr>{rules}</table>"
        "<h2>明细 Findings</h2><table border='1'><tr><th>Rule</th><th>Row</th><th>Field</th>"
        f"<th>Value</th><th>Key</th></tr>{rows}</table></html>\n"
    )
