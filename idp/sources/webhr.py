"""webHR: public-school educators and their posts (人事服務網).

Raw fields: ``pid``, ``fullName``, ``birthDate`` (ROC ``YYY/MM/DD``), ``posts``: a list of
``{"orgCode", "jobType" (教師 / 職員), "title" (e.g. 校長, 導師), "onDuty": bool}``.
"""

from __future__ import annotations

from typing import Any

from idp.identity.nationalid import NationalId
from idp.sources.base import AffiliationRecord, HttpFeed, PersonRecord, parse_date


class WebHR(HttpFeed):
    name = "webhr"
    id_field = "pid"
    required = ("pid", "fullName")

    def to_record(self, raw: dict[str, Any]) -> PersonRecord:
        affs = tuple(
            AffiliationRecord(school_code=p["orgCode"], role=p.get("jobType") or "教師", title=p.get("title") or None,
                              active=bool(p.get("onDuty", True)))
            for p in raw.get("posts", []))
        return PersonRecord(source=self.name, national_id=NationalId.parse(raw["pid"]), name=raw["fullName"],
                            birth_date=parse_date(raw.get("birthDate")), affiliations=affs)
