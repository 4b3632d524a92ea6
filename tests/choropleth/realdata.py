"""A World-Bank-shaped per-country yearly table, written the ways real tables are.

The same data is stored with its time column as DATE, TIMESTAMPTZ (with a non-UTC offset),
epoch seconds or epoch milliseconds, and with its country column as ISO alpha-3, alpha-2,
FIPS 10-4, ISO numeric or names. The code table below is written out by hand (from ISO 3166
and the FIPS 10-4 list), independent of the libraries framecast matches codes with. Values
are a pure function of (country, year, metric) so tests know what every frame must show.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

# a3, a2, fips, numeric, name (as a statistics office might write it)
ROWS = [
    ("DEU", "DE", "GM", "276", "Germany"),
    ("GBR", "GB", "UK", "826", "United Kingdom"),
    ("AUS", "AU", "AS", "036", "Australia"),
    ("CHE", "CH", "SZ", "756", "Switzerland"),
    ("CHN", "CN", "CH", "156", "China"),
    ("IRL", "IE", "EI", "372", "Ireland"),
    ("JPN", "JP", "JA", "392", "Japan"),
    ("RUS", "RU", "RS", "643", "Russia"),
    ("ESP", "ES", "SP", "724", "Spain"),
    ("SWE", "SE", "SW", "752", "Sweden"),
    ("NGA", "NG", "NI", "566", "Nigeria"),
    ("BRA", "BR", "BR", "076", "Brazil"),
    ("CAN", "CA", "CA", "124", "Canada"),
    ("USA", "US", "US", "840", "United States"),
    ("FRA", "FR", "FR", "250", "France"),
    ("IND", "IN", "IN", "356", "India"),
    ("MEX", "MX", "MX", "484", "Mexico"),
    ("ARG", "AR", "AR", "032", "Argentina"),
    ("TUR", "TR", "TU", "792", "Turkey"),
    ("IRQ", "IQ", "IZ", "368", "Iraq"),
    ("IRN", "IR", "IR", "364", "Iran, Islamic Rep."),
    ("EGY", "EG", "EG", "818", "Egypt, Arab Rep."),
    ("DZA", "DZ", "AG", "012", "Algeria"),
    ("ZAF", "ZA", "SF", "710", "South Africa"),
    ("CHL", "CL", "CI", "152", "Chile"),
    ("CIV", "CI", "IV", "384", "Côte d'Ivoire"),
    ("PER", "PE", "PE", "604", "Peru"),
    ("COL", "CO", "CO", "170", "Colombia"),
    ("VEN", "VE", "VE", "862", "Venezuela, RB"),
    ("KAZ", "KZ", "KZ", "398", "Kazakhstan"),
    ("MNG", "MN", "MG", "496", "Mongolia"),
    ("IDN", "ID", "ID", "360", "Indonesia"),
    ("PAK", "PK", "PK", "586", "Pakistan"),
    ("AFG", "AF", "AF", "004", "Afghanistan"),
    ("SAU", "SA", "SA", "682", "Saudi Arabia"),
    ("ETH", "ET", "ET", "231", "Ethiopia"),
    ("COD", "CD", "CG", "180", "Congo, Dem. Rep."),
    ("NOR", "NO", "NO", "578", "Norway"),
    ("FIN", "FI", "FI", "246", "Finland"),
    ("POL", "PL", "PL", "616", "Poland"),
    ("UKR", "UA", "UP", "804", "Ukraine"),
    ("TKM", "TM", "TX", "795", "Turkmenistan"),
    ("KOR", "KR", "KS", "410", "Korea, Rep."),
    ("BOL", "BO", "BL", "068", "Bolivia"),
    ("AGO", "AO", "AO", "024", "Angola"),
    ("NAM", "NA", "WA", "516", "Namibia"),
    ("BWA", "BW", "BC", "072", "Botswana"),
    ("ZMB", "ZM", "ZA", "894", "Zambia"),
    ("MLI", "ML", "ML", "466", "Mali"),
    ("NER", "NE", "NG", "562", "Niger"),
    ("TCD", "TD", "CD", "148", "Chad"),
    ("SDN", "SD", "SU", "729", "Sudan"),
    ("MMR", "MM", "BM", "104", "Myanmar"),
    ("THA", "TH", "TH", "764", "Thailand"),
    ("VNM", "VN", "VM", "704", "Vietnam"),
    ("CZE", "CZ", "EZ", "203", "Czech Republic"),
    ("AUT", "AT", "AU", "040", "Austria"),
    ("GRL", "GL", "GL", "304", "Greenland"),
    ("ISL", "IS", "IC", "352", "Iceland"),
    ("MAR", "MA", "MO", "504", "Morocco"),
]

CODE_COLUMNS = {"iso_a3": 0, "iso_a2": 1, "fips": 2, "iso_numeric": 3, "name": 4}
METRICS = {  # metric -> (breaks, cmap)
    "gdp": ([20, 40, 60, 80], "YlOrRd"),
    "pop": ([150, 350], "viridis"),
    "life": ([50, 60, 70], "PuBu"),
}
TIME_STORAGES = ("date", "timestamptz", "epoch_s", "epoch_ms", "epoch_ms_float")
YEAR0, YEARS = 1960, 30
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def value(k: int, year: int, metric: str) -> float | None:
    """The yearly value of country k (mean of its two rows), None for the gaps."""
    if (k + year) % 11 == 0:
        return None
    if metric == "gdp":
        return float(((k * 7 + year * 3) % 10) * 10 + 5)
    if metric == "pop":
        return float(((k * 3 + year) % 6) * 100 + 50)
    return float(40 + (k * 5 + year * 2) % 40)


def rows(code_type: str = "iso_a3") -> list[tuple[str, datetime, dict[str, float]]]:
    """(code, UTC time, {metric: value}): two rows per country and year (1 Jan, 1 Jul) whose
    mean is :func:`value`."""
    col = CODE_COLUMNS[code_type]
    out = []
    for k, row in enumerate(ROWS):
        for year in range(YEAR0, YEAR0 + YEARS):
            if value(k, year, "gdp") is None:
                continue
            for month, delta in ((1, -1.0), (7, 1.0)):
                t = datetime(year, month, 1, tzinfo=UTC)
                out.append((row[col], t, {m: value(k, year, m) + delta for m in METRICS}))
    return out


def stored_time(t: datetime, storage: str, dialect: str) -> Any:
    if storage == "date":
        return t.date() if dialect == "postgresql" else t.strftime("%Y-%m-%d")
    if storage == "timestamptz":
        local = t.astimezone(timezone(timedelta(hours=-5)))  # same instant, other offset
        return local if dialect == "postgresql" else local.isoformat(sep=" ")
    secs = int((t - _EPOCH).total_seconds())
    if storage == "epoch_ms_float":
        return secs * 1000.0 + 0.25  # float milliseconds, a quarter past the instant
    return secs * 1000 if storage == "epoch_ms" else secs


_SQL_TYPE = {"date": "DATE", "timestamptz": "TIMESTAMPTZ", "epoch_s": "BIGINT",
             "epoch_ms": "BIGINT", "epoch_ms_float": "DOUBLE PRECISION"}


def load(url: str, table: str, storage: str = "date", code_type: str = "iso_a3",
         extra_codes: tuple[str, ...] = ()) -> int:
    """Create ``table`` (code, t, gdp, pop, life, label) with times stored as ``storage``.

    ``label`` is a text column (to show that declaring it as time is refused). Extra codes
    get a row per year (aggregates, small countries, unknown codes).
    """
    from sqlalchemy import create_engine, text

    eng = create_engine(url)
    dialect = eng.dialect.name
    data = rows(code_type)
    for code in extra_codes:
        for year in range(YEAR0, YEAR0 + YEARS):
            data.append((code, datetime(year, 3, 1, tzinfo=UTC), dict.fromkeys(METRICS, 1.0)))
    params = [{"code": c, "t": stored_time(t, storage, dialect), "label": f"row {c}", **v}
              for c, t, v in data]
    with eng.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text(f"CREATE TABLE {table} (code VARCHAR(64), t {_SQL_TYPE[storage]}, "
                          f"gdp DOUBLE PRECISION, pop DOUBLE PRECISION, life DOUBLE PRECISION, "
                          f"label VARCHAR(32))"))
        conn.execute(text(f"INSERT INTO {table} (code, t, gdp, pop, life, label) "
                          f"VALUES (:code, :t, :gdp, :pop, :life, :label)"), params)
    eng.dispose()
    return len(params)


def frame_values(metric: str, frame: int) -> dict[str, float | None]:
    """ISO alpha-3 -> what frame ``frame`` (year YEAR0 + frame) must show for ``metric``."""
    return {row[0]: value(k, YEAR0 + frame, metric) for k, row in enumerate(ROWS)}


def country_geoms(records: list[Any]) -> dict[str, Any]:
    """ISO alpha-3 -> Natural Earth geometry for the table's countries (from the records)."""
    want = {r[0] for r in ROWS}
    out = {}
    for rec in records:
        a = rec.attributes
        for key in ("ISO_A3", "ISO_A3_EH", "ADM0_A3"):
            if a.get(key) in want and a[key] not in out:
                out[a[key]] = rec.geometry
                break
    return out
