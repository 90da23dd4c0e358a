"""Helpers for the county sign-in tests: pupils the county's records list, the round trip through the county."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

from county_op import CountyOP

from idp.extensions import db

SCHOOL = "014601"  # 新北市板橋區板橋國民小學
PUPIL_ID = "A123456789"
COUNTY_ONLY_ID = "H120465130"


def county_person(national_id: str, name: str, account: str | None, *, active: bool = True,
                  school: str = SCHOOL, county_code: str = "01", source: str = "county-01") -> Any:
    """A pupil as the county's student-affairs export lists them (with 縣市帳號), merged like a sync."""
    from idp.identity import services as identity
    from idp.identity.nationalid import NationalId
    from idp.sources import resolver
    from idp.sources.base import AffiliationRecord, CountyAccount, PersonRecord

    aff = AffiliationRecord(school, "學生", grade=3, class_no="305", class_name="三年五班", academic_year=114,
                            semester=1, active=active)
    record = PersonRecord(source, NationalId.parse(national_id), name, dt.date(2016, 5, 21), affiliations=(aff,),
                          county_account=CountyAccount(county_code, account) if account else None)
    resolver.merge_batch(source, [record])
    db.session.commit()
    return identity.person_by_index(identity.index_of(national_id))


def county_round_trip(client: Any, county: CountyOP, name: str = "ntpc", next_url: str | None = None,
                      edit: Any = None) -> Any:
    """Press the county button, sign in at the county (its authorization endpoint answers at once),
    come back to our callback; ``edit(query)`` may change what comes back. The callback's response."""
    import requests

    start = client.get(f"/login/county/{name}" + (f"?next={next_url}" if next_url else ""))
    assert start.status_code == 302, start.get_data(as_text=True)[:500]
    at_county = requests.get(start.headers["Location"], allow_redirects=False, timeout=5)
    assert at_county.status_code == 302, at_county.text[:300]
    back = urlsplit(at_county.headers["Location"])
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    if edit is not None:
        edit(query)
    return client.get(back.path, query_string=query)
