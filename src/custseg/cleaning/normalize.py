"""Normalisation of categorical values: countries, genders, free text.

Written as Ibis expressions (CASE over a fixed alias table) so that the same
code runs on DuckDB and Spark.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

# ISO 3166-1 alpha-2 code -> names and aliases (matched upper-cased, trimmed).
# Covers the countries online stores sell to most; an unknown value is kept
# upper-cased as given and reported by the quality report.
_COUNTRIES: dict[str, tuple[str, ...]] = {
    "AE": ("UNITED ARAB EMIRATES", "ARE", "UAE"),
    "AR": ("ARGENTINA", "ARG"),
    "AT": ("AUSTRIA", "AUT", "ÖSTERREICH", "OSTERREICH"),
    "AU": ("AUSTRALIA", "AUS"),
    "BE": ("BELGIUM", "BEL", "BELGIQUE", "BELGIE", "BELGIË"),
    "BG": ("BULGARIA", "BGR"),
    "BH": ("BAHRAIN", "BHR"),
    "BR": ("BRAZIL", "BRA", "BRASIL"),
    "CA": ("CANADA", "CAN"),
    "CH": ("SWITZERLAND", "CHE", "SCHWEIZ", "SUISSE"),
    "CL": ("CHILE", "CHL"),
    "CN": ("CHINA", "CHN"),
    "CY": ("CYPRUS", "CYP"),
    "CZ": ("CZECHIA", "CZE", "CZECH REPUBLIC"),
    "DE": ("GERMANY", "DEU", "DEUTSCHLAND"),
    "DK": ("DENMARK", "DNK", "DANMARK"),
    "EE": ("ESTONIA", "EST"),
    "ES": ("SPAIN", "ESP", "ESPAÑA", "ESPANA"),
    "FI": ("FINLAND", "FIN", "SUOMI"),
    "FR": ("FRANCE", "FRA"),
    "GB": ("UNITED KINGDOM", "GBR", "UK", "U.K.", "GREAT BRITAIN", "ENGLAND", "SCOTLAND", "WALES",
           "NORTHERN IRELAND", "CHANNEL ISLANDS"),
    "GR": ("GREECE", "GRC"),
    "HK": ("HONG KONG", "HKG"),
    "HR": ("CROATIA", "HRV"),
    "HU": ("HUNGARY", "HUN"),
    "IE": ("IRELAND", "IRL", "EIRE"),
    "IL": ("ISRAEL", "ISR"),
    "IN": ("INDIA", "IND"),
    "IS": ("ICELAND", "ISL"),
    "IT": ("ITALY", "ITA", "ITALIA"),
    "JP": ("JAPAN", "JPN"),
    "KR": ("SOUTH KOREA", "KOR", "KOREA", "REPUBLIC OF KOREA"),
    "LB": ("LEBANON", "LBN"),
    "LT": ("LITHUANIA", "LTU"),
    "LU": ("LUXEMBOURG", "LUX"),
    "LV": ("LATVIA", "LVA"),
    "MT": ("MALTA", "MLT"),
    "MX": ("MEXICO", "MEX"),
    "NG": ("NIGERIA", "NGA"),
    "NL": ("NETHERLANDS", "NLD", "THE NETHERLANDS", "HOLLAND", "NEDERLAND"),
    "NO": ("NORWAY", "NOR", "NORGE"),
    "NZ": ("NEW ZEALAND", "NZL"),
    "PL": ("POLAND", "POL", "POLSKA"),
    "PT": ("PORTUGAL", "PRT"),
    "RO": ("ROMANIA", "ROU"),
    "RS": ("SERBIA", "SRB"),
    "SA": ("SAUDI ARABIA", "SAU"),
    "SE": ("SWEDEN", "SWE", "SVERIGE"),
    "SG": ("SINGAPORE", "SGP"),
    "SI": ("SLOVENIA", "SVN"),
    "SK": ("SLOVAKIA", "SVK"),
    "TR": ("TURKEY", "TUR", "TÜRKIYE", "TURKIYE"),
    "UA": ("UKRAINE", "UKR"),
    "US": ("UNITED STATES", "USA", "U.S.A.", "U.S.", "UNITED STATES OF AMERICA", "AMERICA"),
    "ZA": ("SOUTH AFRICA", "ZAF", "RSA"),
}

COUNTRY_ALIASES: dict[str, str] = {
    alias: code for code, aliases in _COUNTRIES.items() for alias in (code, *aliases)
}
KNOWN_COUNTRIES = frozenset(_COUNTRIES)

GENDER_ALIASES: dict[str, str] = {
    "F": "female", "FEMALE": "female", "W": "female", "WOMAN": "female", "WOMEN": "female",
    "FEMME": "female", "FRAU": "female", "MRS": "female", "MS": "female",
    "M": "male", "MALE": "male", "MAN": "male", "MEN": "male", "HOMME": "male", "MANN": "male", "MR": "male",
    "O": "other", "OTHER": "other", "X": "other", "NON-BINARY": "other", "NONBINARY": "other",
    "NB": "other", "DIVERSE": "other", "D": "other",
    "U": "unknown", "UNKNOWN": "unknown", "N/A": "unknown", "NA": "unknown",
    "PREFER NOT TO SAY": "unknown", "UNSPECIFIED": "unknown",
}


@ibis.udf.scalar.builtin(name="trim")
def _trim_spaces(value: str) -> str:
    """SQL ``trim(x)``: strips spaces; the same function on DuckDB and Spark.

    Ibis' ``strip()`` compiles to ``trim(x, <whitespace set>)``, which DuckDB runs
    about ten times slower; ingestion has already stripped every whitespace.
    """


def clean_text(value: ir.StringValue) -> ir.StringValue:
    """Trim spaces, collapse to NULL when empty."""
    return _trim_spaces(value).nullif("")


def normalize_country(value: ir.StringValue) -> ir.StringValue:
    """Map country names, alpha-3 and alpha-2 codes (any case) to alpha-2 codes."""
    key = clean_text(value).upper()
    return key.substitute(COUNTRY_ALIASES, else_=key)


def normalize_gender(value: ir.StringValue) -> ir.StringValue:
    """Map gender spellings to female / male / other / unknown (NULL stays NULL)."""
    key = clean_text(value).upper().replace(".", "")
    return ibis.ifelse(key.isnull(), ibis.null("string"), key.substitute(GENDER_ALIASES, else_="unknown"))


def normalize_email(value: ir.StringValue) -> ir.StringValue:
    return clean_text(value).lower()


def normalize_label(value: ir.StringValue) -> ir.StringValue:
    """Category-like labels: trimmed and lower-cased, so 'Books ' and 'books' agree."""
    return clean_text(value).lower()
