"""Reading the school directory: the pickers' cascade and name look-ups (R-S5, R-C2).

The pickers go county → district → level → school, each step narrowing the next; only active
schools are offered. ``names`` serves claims and pages that show a school code with its name.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from idp.extensions import db
from idp.schools.models import LEVELS, County, District, School


def counties() -> list[dict[str, Any]]:
    """Counties that have at least one active school, by code (the ministry's order)."""
    rows = db.session.execute(
        sa.select(County.code, County.name).where(
            sa.exists().where(School.county_code == County.code, School.active.is_(True)))
        .order_by(County.code))
    return [{"code": c, "name": n} for c, n in rows]


def districts(county: str) -> list[dict[str, Any]]:
    rows = db.session.execute(
        sa.select(District.id, District.name).where(
            District.county_code == county,
            sa.exists().where(School.district_id == District.id, School.active.is_(True)))
        .order_by(District.name))
    return [{"id": i, "name": n} for i, n in rows]


def _filtered(county: str, district: int | None, level: str | None) -> Any:
    q = sa.select(School).where(School.county_code == county, School.active.is_(True))
    if district is not None:
        q = q.where(School.district_id == district)
    if level:
        q = q.where(School.level == level)
    return q


def levels(county: str, district: int | None = None) -> list[str]:
    present = set(db.session.scalars(_filtered(county, district, None).with_only_columns(School.level).distinct()))
    return [lv for lv in LEVELS if lv in present]


def schools(county: str, district: int | None = None, level: str | None = None) -> list[School]:
    return list(db.session.scalars(_filtered(county, district, level).order_by(School.name)))


def get_school(code: str) -> School | None:
    return db.session.get(School, code)


def names(codes: set[str] | list[str]) -> dict[str, str]:
    """School code → name for the codes known to the directory."""
    if not codes:
        return {}
    return dict(db.session.execute(sa.select(School.code, School.name).where(School.code.in_(list(codes)))).all())


def as_json(school: School) -> dict[str, Any]:
    return {"code": school.code, "name": school.name, "county": {"code": school.county_code,
                                                                  "name": school.county.name},
            "district": school.district.name if school.district else None, "level": school.level,
            "ownership": school.ownership, "authority": school.authority,
            "authority_name": school.authority_name, "oid": school.oid, "active": school.active}
