"""Load the school directory from a CSV file or the ministry's public directory JSON (R-S5).

Both formats become the same neutral ``SchoolRow``s, then one ``apply`` upserts them: a row
that breaks a rule is reported with its line (or item) number and skipped, every good row is
loaded, and nothing already stored is removed, because old affiliations still name schools
that have closed (a closed school is a row with ``active`` false, not a missing row).

The ministry's JSON names a county as ``[01]新北市`` and a district as ``[220]板橋區`` or just
``板橋區``; its ``schoolsystem`` says the level in several spellings (國民小學, 普通型高級中等學校…),
mapped here onto the pickers' short levels.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from idp.extensions import db
from idp.schools.models import AUTHORITIES, LEVELS, OWNERSHIPS, County, District, School

CODE_RE = re.compile(r"[0-9A-Z]{6}")
COUNTY_RE = re.compile(r"\[(\d{2})\]\s*(\S+)")
BRACKET_RE = re.compile(r"^\[[^\]]*\]\s*")
OID_RE = re.compile(r"\d+(\.\d+)+")
# The six special municipalities (直轄市) supervise their own private high schools.
MUNICIPALITIES = {"63", "64", "01", "03", "66", "67"}

LEVEL_WORDS = {
    "國小": "國小", "國民小學": "國小", "小學": "國小",
    "國中": "國中", "國民中學": "國中",
    "高中": "高中", "高級中學": "高中", "普通型高級中等學校": "高中", "完全中學": "高中", "綜合型高級中等學校": "高中",
    "高職": "高職", "高級職業學校": "高職", "技術型高級中等學校": "高職", "單科型高級中等學校": "高職",
    "大專": "大專", "大學": "大專", "科技大學": "大專", "技術學院": "大專", "專科學校": "大專", "大專校院": "大專",
    "特殊教育": "特殊教育", "特殊教育學校": "特殊教育", "特教學校": "特殊教育",
    "實驗教育": "實驗教育", "實驗教育機構": "實驗教育", "實驗學校": "實驗教育",
}
AUTHORITY_WORDS = {"county": "county", "k12": "k12", "moe": "moe",
                   **{name: key for key, name in AUTHORITIES.items()},
                   "縣市政府": "county", "教育局": "county", "教育處": "county", "國教署": "k12", "教育部": "moe"}
# CSV headers, English or Chinese (an operator's Excel export keeps its own headers).
CSV_HEADERS = {
    "code": ("code", "school_code", "學校代碼", "代碼"),
    "name": ("name", "school_name", "學校名稱", "校名"),
    "county_code": ("county_code", "縣市代碼"),
    "county": ("county", "縣市", "縣市名稱"),
    "district": ("district", "鄉鎮市區", "行政區"),
    "level": ("level", "學制"),
    "ownership": ("ownership", "公私立", "屬性"),
    "authority": ("authority", "主管機關"),
    "oid": ("oid", "OID"),
    "active": ("active", "啟用"),
}


class DirectoryError(ValueError):
    """A directory file that cannot be read at all (not a CSV with the needed columns, not JSON)."""


@dataclass(frozen=True)
class SchoolRow:
    code: str
    name: str
    county_code: str
    county_name: str
    district: str | None
    level: str
    ownership: str
    authority: str
    oid: str | None
    active: bool = True


@dataclass
class LoadReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def loaded(self) -> int:
        return self.added + self.updated + self.unchanged


# -- shaping -----------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _level(value: str) -> str:
    key = BRACKET_RE.sub("", value).replace("（", "(").split("(")[0].strip()
    if key in LEVEL_WORDS:
        return LEVEL_WORDS[key]
    for word, level in LEVEL_WORDS.items():  # e.g. 市立國民小學 or 私立高級中學
        if len(word) > 2 and word in key:
            return level
    raise ValueError(f"unknown school level {value!r} (use one of {', '.join(LEVELS)})")


def _ownership(value: str, name: str) -> str:
    if value in OWNERSHIPS:
        return value
    if value in ("public", "市立", "縣立"):
        return "公立"
    if value in ("national",):
        return "國立"
    if value in ("private",):
        return "私立"
    if value:
        raise ValueError(f"unknown ownership {value!r} (use 公立, 國立 or 私立)")
    if name.startswith("國立"):
        return "國立"
    if "私立" in name[:6]:
        return "私立"
    return "公立"


def _authority(value: str, level: str, ownership: str, county_code: str) -> str:
    if value:
        if value not in AUTHORITY_WORDS:
            raise ValueError(f"unknown authority {value!r} (use county, k12 or moe)")
        return AUTHORITY_WORDS[value]
    if level == "大專":
        return "moe"
    if level in ("國小", "國中", "實驗教育"):
        return "k12" if ownership == "國立" else "county"
    if ownership == "公立" or (ownership == "私立" and county_code in MUNICIPALITIES):
        return "county"
    return "k12"


def make_row(*, code: Any, name: Any, county_code: Any, county: Any, district: Any, level: Any,
             ownership: Any = "", authority: Any = "", oid: Any = "", active: Any = True) -> SchoolRow:
    """One validated row; raises ValueError saying what is wrong."""
    code, name = _text(code).upper(), _text(name)
    if not CODE_RE.fullmatch(code):
        raise ValueError(f"school code {code!r} must be 6 digits or capital letters")
    if not name:
        raise ValueError("the school name is empty")
    county_code, county_name = _text(county_code), _text(county)
    m = COUNTY_RE.fullmatch(county_name)
    if m:  # the ministry's "[01]新北市"
        county_code, county_name = county_code or m.group(1), m.group(2)
    if not re.fullmatch(r"\d{2}", county_code):
        raise ValueError(f"county code {county_code!r} must be two digits (e.g. 01 for 新北市)")
    if not county_name:
        raise ValueError("the county name is empty")
    level_ = _level(_text(level))
    ownership_ = _ownership(_text(ownership), name)
    oid_ = _text(oid) or None
    if oid_ is not None and not OID_RE.fullmatch(oid_):
        raise ValueError(f"OID {oid_!r} is not dotted digits")
    active_ = active if isinstance(active, bool) else _text(active).lower() not in ("0", "false", "no", "n", "否")
    return SchoolRow(code=code, name=name, county_code=county_code, county_name=county_name,
                     district=BRACKET_RE.sub("", _text(district)) or None, level=level_, ownership=ownership_,
                     authority=_authority(_text(authority), level_, ownership_, county_code), oid=oid_,
                     active=active_)


def parse_csv(text: str) -> Iterator[tuple[int, SchoolRow | str]]:
    """(line number, row or reason) per data line of a CSV with a header line."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if not reader.fieldnames:
        raise DirectoryError("the file is empty")
    names = {h.strip(): h for h in reader.fieldnames if h}
    columns: dict[str, str] = {}
    for key, aliases in CSV_HEADERS.items():
        found = next((names[a] for a in aliases if a in names), None)
        if found:
            columns[key] = found
    missing = [k for k in ("code", "name", "county", "level") if k not in columns]
    if missing:
        raise DirectoryError(f"missing column(s): {', '.join(missing)}; the header line has "
                             f"{', '.join(names)}")
    for record in reader:
        line = reader.line_num
        values = {k: record.get(col) for k, col in columns.items()}
        values.setdefault("county_code", "")
        values.setdefault("district", "")
        try:
            yield line, make_row(**values)
        except ValueError as exc:
            yield line, str(exc)


def parse_ministry_json(text: str | bytes) -> Iterator[tuple[int, SchoolRow | str]]:
    """(item number, row or reason) per school of the ministry's directory JSON (a list, or
    an object holding the list under ``data``/``schools``/``result``)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DirectoryError(f"not JSON: {exc}") from exc
    if isinstance(data, dict):
        data = next((data[k] for k in ("data", "schools", "result", "records") if isinstance(data.get(k), list)),
                    None)
    if not isinstance(data, list):
        raise DirectoryError("expected a list of schools")
    for i, item in enumerate(data, start=1):
        if not isinstance(item, dict):
            yield i, "not an object"
            continue
        try:
            yield i, make_row(
                code=item.get("eduid") or item.get("schoolid") or item.get("code"),
                name=item.get("schoolname") or item.get("name"),
                county_code=item.get("countycode") or "", county=item.get("county") or "",
                district=item.get("district") or item.get("town") or item.get("area") or "",
                level=item.get("schoolsystem") or item.get("level") or "",
                ownership=item.get("publicprivate") or item.get("attribute") or item.get("ownership") or "",
                authority=item.get("authority") or item.get("supervisor") or "",
                oid=item.get("oid") or "", active=item.get("active", True))
        except ValueError as exc:
            yield i, str(exc)


# -- storing -----------------------------------------------------------------------------------
def apply(parsed: Iterable[tuple[int, SchoolRow | str]]) -> LoadReport:
    """Upsert every good row (the caller commits); report bad ones by number."""
    report = LoadReport()
    rows: dict[str, tuple[int, SchoolRow]] = {}
    oids: dict[str, str] = {}
    for n, row in parsed:
        if isinstance(row, str):
            report.errors.append((n, row))
            continue
        if row.code in rows:
            report.errors.append((n, f"school code {row.code} appears again (first at {rows[row.code][0]})"))
            continue
        if row.oid and oids.get(row.oid, row.code) != row.code:
            report.errors.append((n, f"OID {row.oid} is already used by school {oids[row.oid]}"))
            continue
        rows[row.code] = (n, row)
        if row.oid:
            oids[row.oid] = row.code
    if not rows:
        return report
    counties = {c.code: c for c in db.session.scalars(sa.select(County))}
    for _, row in rows.values():
        county = counties.get(row.county_code)
        if county is None:
            county = counties[row.county_code] = County(code=row.county_code, name=row.county_name)
            db.session.add(county)
        elif county.name != row.county_name:
            county.name = row.county_name
    db.session.flush()
    districts = {(d.county_code, d.name): d for d in db.session.scalars(sa.select(District))}
    for _, row in rows.values():
        key = (row.county_code, row.district)
        if row.district and key not in districts:
            districts[key] = District(county_code=row.county_code, name=row.district)
            db.session.add(districts[key])
    db.session.flush()
    taken_oids = dict(db.session.execute(sa.select(School.oid, School.code).where(
        School.oid.in_(list(oids)))).all()) if oids else {}
    existing = {s.code: s for s in db.session.scalars(sa.select(School).where(School.code.in_(list(rows))))}
    for code, (n, row) in rows.items():
        if row.oid and taken_oids.get(row.oid, code) != code:
            report.errors.append((n, f"OID {row.oid} is already used by school {taken_oids[row.oid]}"))
            continue
        values = {"name": row.name, "county_code": row.county_code,
                  "district_id": districts[(row.county_code, row.district)].id if row.district else None,
                  "level": row.level, "ownership": row.ownership, "authority": row.authority, "oid": row.oid,
                  "active": row.active}
        school = existing.get(code)
        if school is None:
            db.session.add(School(code=code, **values))
            report.added += 1
        elif any(getattr(school, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(school, k, v)
            report.updated += 1
        else:
            report.unchanged += 1
    db.session.flush()
    report.errors.sort()
    return report


def load_file(text: str, fmt: str) -> LoadReport:
    """Parse ``text`` as ``csv`` or ``json`` and apply it (the caller commits)."""
    if fmt == "csv":
        return apply(parse_csv(text))
    if fmt == "json":
        return apply(parse_ministry_json(text))
    raise DirectoryError(f"unknown format {fmt!r} (csv or json)")
