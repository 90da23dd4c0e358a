"""The K-12 Education Administration's senior-high student registry (高中學籍系統), national feed.

Raw fields: ``idno``, ``cname``, ``birth_ymd`` (YYYYMMDD), ``schno``, ``grade``, ``clsno``, ``clsname``,
``enroll_status`` ("1" enrolled, "0" left), ``syear``, ``sem``.
"""

from __future__ import annotations

from typing import Any

from idp.identity.nationalid import NationalId
from idp.sources.base import AffiliationRecord, HttpFeed, PersonRecord, parse_date
from idp.sources.county_sis import _int


class K12Registry(HttpFeed):
    name = "k12"
    id_field = "idno"
    required = ("idno", "cname", "schno")

    def to_record(self, raw: dict[str, Any]) -> PersonRecord:
        aff = AffiliationRecord(
            school_code=raw["schno"], role="學生", grade=_int(raw.get("grade")),
            class_no=str(raw.get("clsno") or "") or None, class_name=raw.get("clsname") or None,
            academic_year=_int(raw.get("syear")), semester=_int(raw.get("sem")),
            active=str(raw.get("enroll_status", "1")) == "1")
        return PersonRecord(source=self.name, national_id=NationalId.parse(raw["idno"]), name=raw["cname"],
                            birth_date=parse_date(raw.get("birth_ymd")), affiliations=(aff,))
