"""Identity rules other packages call: find a person by a typed ID, resolve a conflict, rotate keys.

Operator views (issue 3 item 9) use these: the typed number is hashed on arrival and only the
blind index goes further; every look-up is audited by the caller with the person id, never the ID.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from idp.errors import NotFound
from idp.extensions import db
from idp.identity import protection
from idp.identity.models import IdentityConflict, Person
from idp.identity.nationalid import NationalId


def index_of(raw_id: str) -> str:
    """The blind index of a typed number (raises InvalidNationalId saying what is wrong with it)."""
    return protection.blind_index(NationalId.parse(raw_id))


def person_by_index(blind_index: str) -> Person | None:
    return db.session.scalar(sa.select(Person).where(Person.blind_index == blind_index))


def find_person(raw_id: str) -> Person | None:
    """Parse, hash, look up."""
    return person_by_index(index_of(raw_id))


def open_conflicts(limit: int = 100) -> list[IdentityConflict]:
    return list(db.session.scalars(sa.select(IdentityConflict).where(IdentityConflict.status == "open")
                                   .order_by(IdentityConflict.id).limit(limit)))


def resolve_conflict(conflict_id: int, resolved_by: str, note: str, name: str | None = None,
                     birth_date: dt.date | None = None, birth_month_day: str | None = None) -> IdentityConflict:
    """Close a conflict, optionally setting the value the operator confirmed on the person. Caller commits.

    A confirmed month-day (the only thing a proxy roster knows) replaces the person's full date
    when that date disagrees with it, and leaves an agreeing full date alone."""
    conflict = db.session.get(IdentityConflict, conflict_id)
    if conflict is None:
        raise NotFound()
    person = db.session.scalar(sa.select(Person).where(Person.blind_index == conflict.blind_index))
    if person is not None and name:
        person.name = name
    if person is not None and birth_date:
        person.birth_date, person.birth_month_day = birth_date, birth_date.strftime("%m%d")
    elif person is not None and birth_month_day:
        person.birth_month_day = birth_month_day
        if person.birth_date is not None and person.birth_date.strftime("%m%d") != birth_month_day:
            person.birth_date = None
    conflict.status, conflict.resolved_by, conflict.note = "resolved", resolved_by, note
    return conflict


def rotate_keys(batch: int = 1000) -> int:
    """Re-encrypt every person under the current key; returns how many rows moved. Commits per batch."""
    prot = protection.protector()
    prefix = prot.current_key_id + ":"
    moved = 0
    while True:
        people = db.session.scalars(sa.select(Person).where(~Person.national_id_ciphertext.startswith(prefix))
                                    .limit(batch)).all()
        if not people:
            return moved
        for p in people:
            p.national_id_ciphertext = prot.reencrypt(p.national_id_ciphertext)
        moved += len(people)
        db.session.commit()


# -- what relying parties may learn (issue 3 item 7) -----------------------------------------
ROLE_ORDER = {"學生": 0, "教師": 1, "職員": 2}


def person_for_account(account_id: int) -> Person | None:
    """The person behind a cloud account, or None (a member, or an account not yet linked)."""
    return db.session.scalar(sa.select(Person).where(Person.account_id == account_id))


def has_identity(account_id: int) -> bool:
    """Is this account backed by a person known from a trusted source (R-A2 real name)?"""
    return db.session.scalar(sa.select(Person.id).where(Person.account_id == account_id)) is not None


def eduinfo(person: Person) -> dict:
    """The ministry's education claim for a person's current affiliations (without ``sub``).

    ``schoolid`` is the main school: the most recently seen current affiliation (a pupil's
    class before a staff post); ``titles`` lists per school the roles and titles (學生, 教師,
    校長…); ``classinfo`` exists only for students. Numbers are strings, as the ministry's API
    returns them, so relying parties written for it parse the same JSON.
    """
    from idp.identity.models import Affiliation

    active = [a for a in db.session.scalars(
        sa.select(Affiliation).where(Affiliation.person_id == person.id, Affiliation.status == "active"))]
    active.sort(key=lambda a: (ROLE_ORDER.get(a.role, 9), -(a.last_seen.timestamp() if a.last_seen else 0), a.id))
    titles: dict[str, list[str]] = {}
    for a in active:
        words = titles.setdefault(a.school_code, [])
        for word in (a.role, a.title):
            if word and word not in words:
                words.append(word)
    classinfo = [{"year": _s(a.academic_year), "semester": _s(a.semester), "schoolid": a.school_code,
                  "grade": _s(a.grade), "classno": _s(a.class_no), "classtitle": a.class_name or ""}
                 for a in active if a.role == "學生"]
    out: dict = {"schoolid": active[0].school_code if active else "",
                 "titles": [{"schoolid": code, "titles": words} for code, words in titles.items()]}
    if classinfo:
        out["classinfo"] = classinfo
    return out


def _s(value: object) -> str:
    return "" if value is None else str(value)
