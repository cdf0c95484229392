"""The edit catalogue: every rule a submission is checked against, with a stable id.

Rule ids never change meaning once published (submitters script against them).
Classes follow the HMDA platform: syntactic (S) and validity (V) edits reject the file,
quality (Q) edits hold it until the submitter verifies, macro (M) edits are flags.
"""

from __future__ import annotations

from dataclasses import dataclass

SYNTACTIC, VALIDITY, QUALITY, MACRO = "syntactic", "validity", "quality", "macro"
BLOCKING_CLASSES = (SYNTACTIC, VALIDITY)


@dataclass(frozen=True)
class Rule:
    id: str
    edit_class: str
    description_en: str
    description_zh: str


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "S001",
            SYNTACTIC,
            "File name must be <type>__<submitter USCC>__<YYYY-MM>.<csv|xlsx|parquet>.",
            "文件名须为 <类型>__<报送机构统一社会信用代码>__<YYYY-MM>.<csv|xlsx|parquet>。",
        ),
        Rule(
            "S002",
            SYNTACTIC,
            "Unknown submission type in the file name.",
            "文件名中的报送类型不存在。",
        ),
        Rule(
            "S003",
            SYNTACTIC,
            "The USCC in the file name must be the folder's (the submitter's own).",
            "文件名中的统一社会信用代码须与所在目录（报送机构本身）一致。",
        ),
        Rule(
            "S004",
            SYNTACTIC,
            "The file is empty or has a header but no rows.",
            "文件为空或只有表头。",
        ),
        Rule(
            "S005", SYNTACTIC, "A required column is missing from the header.", "表头缺少必需的列。"
        ),
        Rule(
            "S006",
            SYNTACTIC,
            "The header has a column the contract does not define.",
            "表头含有报送规范未定义的列。",
        ),
        Rule(
            "S007",
            SYNTACTIC,
            "The file cannot be parsed as CSV, XLSX or Parquet (e.g. an unclosed quote).",
            "文件无法按 CSV、XLSX 或 Parquet 格式解析（如引号未闭合）。",
        ),
        Rule("S008", SYNTACTIC, "The file is larger than the size limit.", "文件超过大小上限。"),
        Rule(
            "S009",
            SYNTACTIC,
            "The period in the file name is not a valid YYYY-MM month.",
            "文件名中的期间不是有效的 YYYY-MM 月份。",
        ),
        Rule(
            "S010",
            SYNTACTIC,
            "The submitter may not submit this type: unknown in the institution registry, its "
            "licence revoked before the period, or the type is not one its role submits (a "
            "suspended institution still reports its book).",
            "报送机构无权报送该类型：未在机构名录中登记、许可在该期间之前已被撤销，或其角色不报送该类型"
            "（暂停业务的机构仍须报送其存量业务）。",
        ),
        Rule(
            "S011",
            SYNTACTIC,
            "The file is neither UTF-8 (with or without BOM) nor GB18030/GBK text; the report "
            "names the line and byte offset of the first byte that cannot be decoded.",
            "文件既不是 UTF-8（含或不含 BOM）也不是 GB18030/GBK 文本；报告给出第一个无法解码的"
            "字节所在的行和字节偏移。",
        ),
        Rule(
            "S012",
            SYNTACTIC,
            "The file is not comma-separated (its header is split by ; or tab or |).",
            "文件不是逗号分隔（表头以分号、制表符或竖线分隔）。",
        ),
        Rule(
            "S013",
            SYNTACTIC,
            "A row has more or fewer fields than the header (the report names the line).",
            "某行的字段数与表头不一致（报告给出行号）。",
        ),
        Rule(
            "S014",
            SYNTACTIC,
            "The XLSX file unpacks beyond the size or compression-ratio limit.",
            "XLSX 文件解压后超过大小或压缩比上限。",
        ),
        Rule(
            "S015",
            SYNTACTIC,
            "The workbook has no worksheet, or the sheet read (named after the type, else the "
            "first) has no header in row 1.",
            "工作簿没有工作表，或所读工作表（以报送类型命名者，否则为第一个）第 1 行没有表头。",
        ),
        Rule(
            "S016",
            SYNTACTIC,
            "Two header cells name the same column (directly or through an alias).",
            "两个表头单元格指向同一列（直接或经别名）。",
        ),
        Rule(
            "S017",
            SYNTACTIC,
            "A Parquet column has a type that cannot be read as text (nested or binary).",
            "Parquet 文件中某列的类型无法读为文本（嵌套或二进制类型）。",
        ),
        Rule(
            "S018",
            SYNTACTIC,
            "The landed file is not a regular file (a symbolic link or a special file).",
            "报送的文件不是普通文件（符号链接或特殊文件）。",
        ),
        Rule(
            "V001",
            VALIDITY,
            "The value does not have the column's type.",
            "取值与该列的数据类型不符。",
        ),
        Rule("V002", VALIDITY, "A required value is missing.", "必填项为空。"),
        Rule(
            "V003",
            VALIDITY,
            "The value is not one of the allowed codes.",
            "取值不在允许的代码表内。",
        ),
        Rule(
            "V004",
            VALIDITY,
            "The USCC's check character is wrong (GB 32100-2015).",
            "统一社会信用代码校验位错误（GB 32100-2015）。",
        ),
        Rule(
            "V005", VALIDITY, "Unknown GB/T 2260 region code.", "行政区划代码不存在（GB/T 2260）。"
        ),
        Rule("V006", VALIDITY, "Amounts and counts must not be negative.", "金额和数量不得为负。"),
        Rule(
            "V007",
            VALIDITY,
            "The row's period must equal the period in the file name.",
            "行内期间须与文件名中的期间一致。",
        ),
        Rule("V008", VALIDITY, "The period is in the future.", "报送期间晚于当前月份。"),
        Rule(
            "V009",
            VALIDITY,
            "Timestamps need a UTC offset and must fall in the reporting month.",
            "时间须带时区偏移并落在报送月份内。",
        ),
        Rule("V010", VALIDITY, "The row's key duplicates another row's.", "该行主键与其他行重复。"),
        Rule(
            "V011",
            VALIDITY,
            "balance_outsourced must not exceed balance.",
            "委外余额不得超过余额。",
        ),
        Rule(
            "V012",
            VALIDITY,
            "References must be 64-character lowercase hex HMAC-SHA256 pseudonyms.",
            "引用须为 64 位小写十六进制 HMAC-SHA256 假名。",
        ),
        Rule(
            "V013",
            VALIDITY,
            "The submitter column must name the file's submitter.",
            "报送机构列须为文件的报送机构。",
        ),
        Rule(
            "V014",
            VALIDITY,
            "resolved_at must not be before received_at.",
            "办结时间不得早于受理时间。",
        ),
        Rule(
            "V015",
            VALIDITY,
            "Personal data (mobile number or ID number) must never be submitted.",
            "不得报送个人信息（手机号码或身份证号码）。",
        ),
        Rule(
            "V016",
            VALIDITY,
            "A cell contains a control character (tab, line break and the like).",
            "单元格含有控制字符（制表符、换行符等）。",
        ),
        Rule(
            "V017",
            VALIDITY,
            "Text that a spreadsheet would run as a formula (starts with = + - @).",
            "文本会被电子表格当作公式执行（以 = + - @ 开头）。",
        ),
        Rule(
            "V018",
            VALIDITY,
            "Chinese characters (a personal name) in an identifier or reference field.",
            "标识或引用字段中含有汉字（可能为个人姓名）。",
        ),
        Rule(
            "V019",
            VALIDITY,
            "The complaint's source does not match the submitter's role (lender, agency; "
            "hotline and association only from the regulator).",
            "投诉来源与报送机构角色不符（贷款机构、催收机构；热线和协会仅由监管机构报送）。",
        ),
        Rule(
            "Q001",
            QUALITY,
            "Recovered in the month exceeds the bucket's balance.",
            "当月回收金额超过该账龄段余额。",
        ),
        Rule(
            "Q002",
            QUALITY,
            "The commission rate is outside 0–0.6.",
            "佣金费率超出 0–0.6 的合理范围。",
        ),
        Rule(
            "Q003",
            QUALITY,
            "The region's overdue share of balance is more than 3 times the submitter's last "
            "accepted month.",
            "该地区逾期余额占比超过本机构上一已接受月份的 3 倍。",
        ),
        Rule(
            "Q004",
            QUALITY,
            "balance_outsourced differs by more than 1% from the sum of the lender's "
            "agency_assignment.balance_assigned for the same region and bucket.",
            "委外余额与本机构同一地区、账龄段委托明细的委托余额合计相差超过 1%。",
        ),
        Rule(
            "Q005",
            QUALITY,
            "The counterparty is not a registered institution of the expected role that "
            "still reports for the period (unknown, or its licence was revoked before it).",
            "交易对手未在机构名录中登记为相应角色，或其许可在该期间之前已被撤销。",
        ),
        Rule(
            "M001",
            MACRO,
            "Lender and agency disagree by more than 5% on the balance assigned for the same "
            "lender, agency and region.",
            "贷款机构与催收机构对同一委托方、受托方和地区的委托余额相差超过 5%。",
        ),
        Rule(
            "M002",
            MACRO,
            "Received after the due date (by default the 15th of the next month, 23:59:59 +08:00).",
            "报送时间晚于截止日期（默认为次月 15 日 23:59:59，北京时间）。",
        ),
        Rule(
            "M003",
            MACRO,
            "No institution registry was in effect: the submitter's permission was not checked.",
            "尚无生效的机构名录：未核验报送机构的报送权限。",
        ),
    )
}


def rule(rule_id: str) -> Rule:
    return RULES[rule_id]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _permissions_and_personal_data() -> list[str]:
    from collectwatch.intake.edits import IDENTIFIER_COLUMNS, NO_MOBILE_CHECK_COLUMNS
    from collectwatch.intake.registry import ROLE_COMPLAINT_SOURCES, ROLE_TYPES

    lines = [
        "",
        "## Who may submit what / 报送权限 (S010, V013, V019)",
        "",
        "The regulator (`COLLECTWATCH_REGULATOR_USCC`) submits `institution_registry`; the",
        "current accepted registry of the period (else the latest earlier one, else the",
        "earliest later one) decides who else may submit. Unknown institutions and those",
        "whose licence was revoked before the period are refused (S010); a suspended one",
        "still reports its book. Before any registry has been accepted, files are",
        "taken on the landing folder's word and flagged M003. Rows must name the submitter",
        "in its own column (V013).",
        "",
        "| role | may submit | complaint sources |",
        "|---|---|---|",
    ]
    lines += [
        f"| {role} | {', '.join(types)} | {', '.join(ROLE_COMPLAINT_SOURCES[role])} |"
        for role, types in ROLE_TYPES.items()
    ]
    lines += [
        "",
        "## Personal data detected / 个人信息识别 (V015, V018)",
        "",
        "Searched for in every text cell that is not a well-formed value of its column",
        "(numbers, timestamps, allowed codes, valid USCCs, known regions and 64-hex",
        "references cannot hold personal data; a number column is not searched because an",
        "11-digit amount is an amount):",
        "",
        "- V015 mainland mobile number: `1[3-9]` and 9 more digits, no digit either side"
        f" (not in {', '.join(NO_MOBILE_CHECK_COLUMNS)}: an issuer's digit runs);",
        "- V015 resident ID number (GB 11643): 6-digit area, birth date 19xx/20xx, 3 digits,",
        "  and a check character that is right (weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2);",
        "- V018 Han characters (a Chinese personal name) in identifier and reference columns: "
        f"{', '.join(IDENTIFIER_COLUMNS)}, USCC columns, case_ref, debtor_ref.",
        "",
        "Reports mask these values (Han characters always, otherwise all but the first 3",
        "and last 2 characters); a file rejected for personal data is not kept.",
    ]
    return lines


def render_markdown() -> str:
    """docs/edits.md: the catalogue and the contracts, generated so docs cannot drift
    (`collectwatch docs`; a test fails when the checked-in file differs)."""
    from collectwatch.contracts import SUBMISSION_TYPES

    lines = [
        "# Edits and submission contracts / 校验规则与报送规范",
        "",
        "Generated by `collectwatch docs` from `include/collectwatch/intake/catalogue.py` and",
        "`include/collectwatch/contracts.py`; do not edit by hand.",
        "",
        "Syntactic and validity edits reject the file; quality edits hold it until the",
        "submitter verifies (`collectwatch verify`); macro edits are flags for the regulator.",
        "",
        "| rule | class | description | 说明 |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r.id} | {r.edit_class} | {_cell(r.description_en)} | {_cell(r.description_zh)} |"
        for r in RULES.values()
    ]
    lines += _permissions_and_personal_data()
    for submission_type in SUBMISSION_TYPES.values():
        lines += [
            "",
            f"## `{submission_type.name}`",
            "",
            f"Submitted by: {submission_type.submitter_role}. "
            f"Key: {', '.join(submission_type.key)}. File name: "
            f"`{submission_type.name}__<USCC>__<YYYY-MM>.csv`.",
            "",
            "| column | type | required | allowed values / check |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {c.name} | {c.type} | {'yes' if c.required else 'no'} | "
            f"{', '.join(c.allowed) or c.kind} |"
            for c in submission_type.columns
        ]
    lines += _formats_section()
    return "\n".join(lines) + "\n"


def _formats_section() -> list[str]:
    """How files are read, and the Chinese header aliases (from ``contracts``)."""
    from collectwatch.contracts import HEADER_ALIASES_ZH, SUBMISSION_TYPES, TYPE_NAMES_ZH

    lines = [
        "",
        "## File formats / 文件格式",
        "",
        "- **CSV**: comma-separated, RFC 4180 quoting, in UTF-8 (with or without BOM) or",
        "  GB18030/GBK. UTF-8 is tried first; a file that is not valid UTF-8 is decoded",
        "  strictly as GB18030; the report's `source.encoding` states which. Anything else is",
        "  S011 with the line and byte offset of the first undecodable byte. Rows are numbered",
        "  by record with the header as row 1 (blank lines are skipped and not counted).",
        "- **XLSX**: the sheet named after the type (English or Chinese name below), else the",
        "  first sheet; header in row 1; rows numbered as in Excel. Merged ranges take their",
        "  top-left value. Excel datetimes have no time zone and are read as Beijing time",
        "  (+08:00); a date in `period` that is the 1st of a month is read as that month",
        "  (Excel turns a typed `2026-10` into 2026-10-01). Whole numbers lose Excel's `.0`.",
        "- **Parquet**: any column types but nested or binary ones; rows numbered by 1-based",
        "  index. Timestamps with time zone are rendered at +08:00; timestamps without time",
        "  zone have no offset and fail V009.",
        "- Headers: the English names (any case, surrounding spaces ignored) or the Chinese",
        "  aliases below, compared after NFKC (full-width forms become half-width).",
        "- Values: trimmed; in code, enum, date and numeric columns full-width characters become",
        "  half-width; numeric columns drop thousands separators when the grouping is valid",
        "  (`1,234,567.89`). Anything else is left as submitted for the edits to judge. Rows",
        "  whose every cell is empty are ignored.",
        "",
        "| type | XLSX sheet (English or 中文) |",
        "|---|---|",
    ]
    lines += [f"| {name} | {name} / {TYPE_NAMES_ZH[name]} |" for name in SUBMISSION_TYPES]
    lines += ["", "| column | 中文表头 / Chinese headers |", "|---|---|"]
    lines += [f"| {name} | {'、'.join(aliases)} |" for name, aliases in HEADER_ALIASES_ZH.items()]
    return lines
