"""Code systems and time kinds, unit by unit, against facts written out here (ISO 3166,
FIPS 10-4, Unix time), not against the tables the code builds."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from framecast.choropleth.codes import (
    CodeMatcher,
    detect_code_type,
    is_aggregate,
    normalize_name,
)
from framecast.choropleth.geography import load_countries
from framecast.choropleth.timecols import classify, epoch_unit
from framecast.errors import DataError


@pytest.fixture(scope="module")
def world():
    return load_countries("110m")


def _drawn(matcher: CodeMatcher, code) -> str | None:
    i = matcher.index_of(code)
    return None if i is None else matcher.features.adm0_a3[i]


@pytest.mark.parametrize("code_type, code, adm0", [
    ("fips", "GM", "DEU"), ("iso_a2", "GM", "GMB"), ("fips", "UK", "GBR"),
    ("fips", "AS", "AUS"), ("iso_a2", "AS", None),  # American Samoa: not on the 110m map
    ("fips", "SZ", "CHE"), ("iso_a2", "SZ", "SWZ"), ("fips", "CH", "CHN"),
    ("iso_a2", "CH", "CHE"), ("fips", "IV", "CIV"), ("iso_a2", "CI", "CIV"),
    ("fips", "CI", "CHL"), ("fips", "KV", "KOS"), ("iso_a2", "XK", "KOS"),
    ("iso_a3", "KOS", "KOS"), ("iso_numeric", "276", "DEU"), ("iso_numeric", 76, "BRA"),
    ("iso_numeric", "076", "BRA"), ("name", "Côte d'Ivoire", "CIV"),
    ("name", "Cote d'Ivoire", "CIV"), ("name", "Ivory Coast", "CIV"),
    ("name", "Korea, Rep.", "KOR"), ("name", "South Korea", "KOR"),
    ("name", "Korea, Dem. People's Rep.", "PRK"), ("name", "Congo, Dem. Rep.", "COD"),
    ("name", "Congo, Rep.", "COG"), ("name", "Russian Federation", "RUS"),
    ("name", "Russia", "RUS"), ("name", "Gambia, The", "GMB"), ("name", "Türkiye", "TUR"),
    ("name", "Viet Nam", "VNM"), ("name", "United States of America", "USA"),
    ("name", "Germany", "DEU"), ("name", "germany ", "DEU"), ("name", "Atlantis", None),
])
def test_codes_land_on_the_right_country(world, code_type, code, adm0):
    assert _drawn(CodeMatcher(world, code_type), code) == adm0


def test_detection():
    assert detect_code_type(["DE", "FR", "GB", "US"]) == "iso_a2"
    assert detect_code_type(["GM", "FR", "UK", "US"]) == "fips"  # UK: FIPS only
    assert detect_code_type(["DEU", "FRA", "OWID_WRL", "WLD"]) == "iso_a3"
    assert detect_code_type(["DE", "DEU", "Germany", 276]) == "iso_a2+iso_a3+iso_numeric+name"
    assert detect_code_type(["FR", "US", "BR"]) == "iso_a2"  # same meaning in both systems
    with pytest.raises(DataError, match=r"mix ISO 3166 alpha-2 \(only ISO: DE\) and FIPS "
                                        r"10-4 \(only FIPS: UK\)"):
        detect_code_type(["DE", "UK"])
    with pytest.raises(DataError, match=r"ambiguous.*GM \(ISO: Gambia, FIPS: Germany\)"):
        detect_code_type(["GM", "SZ", "FR"])
    assert detect_code_type(["US-CA", "US-TX", "US"], "admin1") == "iso_3166_2"
    assert detect_code_type(["Texas", "California"], "admin1") == "name"


def test_aggregates_and_names():
    for code in ("WLD", "EUU", "OED", "HIC", "OWID_EUR", "World", "High income", "Euro area"):
        assert is_aggregate(code), code
    for code in ("DEU", "SGP", "Germany", "ZZZ"):
        assert not is_aggregate(code), code
    assert is_aggregate("US", "admin1") and is_aggregate("Germany", "admin1")
    assert normalize_name("Côte d’Ivoire") == normalize_name("cote d'ivoire") == "cote divoire"
    assert normalize_name("The Gambia") == "gambia"


def test_epoch_units_and_time_kinds():
    s_1960 = int((datetime(1960, 1, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC))
                 .total_seconds())
    s_2024 = 1_704_067_200  # 2024-01-01T00:00:00Z
    assert epoch_unit(s_1960, s_2024) == "s"
    assert epoch_unit(s_1960 * 1000, s_2024 * 1000) == "ms"
    assert epoch_unit(0, 10**15) is None
    kw = {"column": "t", "where": "tbl", "declared_unit": None}
    assert classify(s_1960, s_2024, dialect="sqlite", **kw) == "epoch_s"
    assert classify(float(s_1960) * 1000, s_2024 * 1000.5, dialect="postgresql",
                    **kw) == "epoch_ms"
    assert classify(1, 2, dialect="sqlite", column="t", where="tbl",
                    declared_unit="ms") == "epoch_ms"
    assert classify("2020-01-01", "2021-03-04 05:00:00", dialect="sqlite", **kw) == "iso_text"
    assert classify("2020-01-01 00:00:00+02:00", "2021-01-01 00:00:00+02:00",
                    dialect="sqlite", **kw) == "timestamptz"
    assert classify(date(2020, 1, 1), date(2021, 1, 1), dialect="postgresql", **kw) == "date"
    assert classify(datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC),
                    dialect="postgresql", **kw) == "timestamptz"
    with pytest.raises(DataError, match="holds text values such as 'Austria'"):
        classify("Austria", "Germany", dialect="sqlite", **kw)
    with pytest.raises(DataError, match=r"cast it in source.query"):
        classify("2020-01-01", "2021-01-01", dialect="postgresql", **kw)
    with pytest.raises(DataError, match="time_unit 's' is for epoch number columns"):
        classify(date(2020, 1, 1), date(2021, 1, 1), dialect="postgresql", column="t",
                 where="tbl", declared_unit="s")
