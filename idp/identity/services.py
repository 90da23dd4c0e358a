"""Identity rules other packages call (R-A2, R-S): who a person is, which account is theirs, what an
operator may see, how a conflict is closed.

- ``link_account`` is the one way a cloud account and a person are joined: one account per person
  for life, audited. ``find_by_personal_data`` is the one way a person is recognised from what they
  typed (name, ID, birthday; a month-day-only source matches on month and day, R-S3).
  ``person_by_county_account`` finds a county's current pupil by their account at the county (R-L2),
  through its keyed hash only.
- Operator views (issue 3 item 9): a typed number is hashed on arrival and only the blind index goes
  further; every look-up and every person page is audited with the person id, never the ID, and uses
  the operator's hourly allowance.

Services add and flush; the caller commits (``idp.db.commit``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask_babel import lazy_gettext as _l

from idp.errors import IdpError, InvalidField, NotFound
from idp.extensions import db
from idp.identity import protection
from idp.identity.models import Affiliation, IdentityConflict, Person, SourceRecord
from idp.identity.nationalid import NationalId
from idp.security import audit, ratelimit


class AlreadyLinked(IdpError):
    """The person already has a cloud account, or the account already belongs to a person."""

    status = 409
    code = "already_linked"
    message = _l("This person already has an education cloud account.")


def index_of(raw_id: str) -> str:
    """The blind index of a typed number (raises InvalidNationalId saying what is wrong with it)."""
    return protection.blind_index(NationalId.parse(raw_id))


def person_by_index(blind_index: str) -> Person | None:
    return db.session.scalar(sa.select(Person).where(Person.blind_index == blind_index))


def person_by_county_account(county_code: str, account: str) -> Person | None:
    """The person a county's source reports with this account at the county (縣市帳號, R-L2), or None.

    ``county_code``: the school directory's two-digit code of the county (``"01"`` = 新北市);
    ``account``: as the county's login names it (case and full-width forms do not matter). The
    account is hashed here and goes no further. The link lasts while the county's source reports
    the pupil at school with that account: gone once it says 離校, stops sending the account, or a
    new snapshot no longer lists the pupil. Two people with the same account at one county find
    nobody (never a guess). Affiliations are not checked here: the county login refuses a person
    without a current affiliation at a school of that county with its own page."""
    if not account or not account.strip() or not county_code:
        return None
    index = protection.county_account_index(county_code, account)
    ids = db.session.scalars(sa.select(Person.id).join(SourceRecord, SourceRecord.blind_index == Person.blind_index)
                             .where(SourceRecord.county_account_index == index).distinct().limit(2)).all()
    return db.session.get(Person, ids[0]) if len(ids) == 1 else None


def find_person(raw_id: str) -> Person | None:
    """Parse, hash, look up."""
    return person_by_index(index_of(raw_id))


def find_by_personal_data(name: str | None, national_id: str | NationalId, birthday: dt.date) -> Person | None:
    """The person the trusted sources know by this name, ID and birthday, or None. A month-day-only
    source (the proxy platform) matches on month and day (R-S3); the typed ID is parsed here (raising
    ``InvalidNationalId`` with its reason) and goes no further than its blind index. ``name=None``
    matches on ID and birthday alone (忘記帳號, R-C1, asks no name)."""
    from idp.sources import resolver

    nid = national_id if isinstance(national_id, NationalId) else NationalId.parse(national_id)
    return resolver.match(name, nid, birthday)


def link_account(person: Person, account: Any, *, actor: str) -> None:
    """Join a cloud account to its person, for life (R-A2): a person has at most one account and an
    account belongs to at most one person; linking again the same pair changes nothing. Audited."""
    if person.account_id == account.id:
        return
    if person.account_id is not None or person_for_account(account.id) is not None:
        raise AlreadyLinked()
    person.account_id = account.id
    audit.record(audit.IDENTITY_LINKED, actor=actor, person_id=person.id, account_id=account.id)
    db.session.flush()


def unlink_account(person: Person, *, actor: str, reason: str) -> None:
    """Part a person from their account (an operator removing a wrongly linked or deleted account);
    the person may then be linked to another. Audited with the reason."""
    if person.account_id is None:
        return
    audit.record(audit.IDENTITY_UNLINKED, actor=actor, person_id=person.id, account_id=person.account_id,
                 reason=reason[:200])
    person.account_id = None
    db.session.flush()


# -- operators: people and conflicts -----------------------------------------------------------
@dataclass(frozen=True)
class PersonView:
    """What an operator sees about one person: no national ID, only who, where and from whom."""

    person: Person
    affiliations: list[Affiliation]
    records: list[SourceRecord]
    conflicts: list[IdentityConflict]
    account: Any
    school_names: dict[str, str]


def lookup_person(raw_id: str, actor: str) -> Person | None:
    """Find a person by a typed national ID. The number is hashed here and goes no further: the
    audit row names the person found, or only a truncated blind index when nobody matched.
    Each operator has an hourly allowance (``nationalid.lookup``) so that a stolen operator
    session cannot walk the ID space."""
    limit = ratelimit.nationalid_lookup()
    ratelimit.check(limit, actor)
    bi = index_of(raw_id)  # InvalidNationalId (400) says what is wrong with the number
    ratelimit.count_failure(limit, actor)  # every well-formed look-up uses the allowance
    person = person_by_index(bi)
    audit.record(audit.IDENTITY_LOOKUP, actor=actor, found=person is not None,
                 **({"person_id": person.id} if person is not None else {"blind_index_prefix": bi[:12]}))
    return person


def person_view(person_id: int, actor: str, *, counted: bool = False) -> PersonView:
    """One person's affiliations (current and past), what each source said, and open conflicts.

    Opening a person page uses the operator's look-up allowance like a look-up by ID does (walking
    ``/admin/people/<id>`` must not be a way around it), unless it is the page a look-up just led
    to (``counted``: that look-up was counted already)."""
    from idp.accounts.services import get_account
    from idp.schools.services import names

    if not counted:
        limit = ratelimit.nationalid_lookup()
        ratelimit.check(limit, actor)
        ratelimit.count_failure(limit, actor)
    person = db.session.get(Person, person_id)
    if person is None:
        raise NotFound()
    affiliations = list(db.session.scalars(
        sa.select(Affiliation).where(Affiliation.person_id == person_id)
        .order_by(Affiliation.status, Affiliation.last_seen.desc())))
    records = list(db.session.scalars(sa.select(SourceRecord).where(SourceRecord.blind_index == person.blind_index)
                                      .order_by(SourceRecord.source)))
    conflicts = list(db.session.scalars(sa.select(IdentityConflict).where(
        IdentityConflict.blind_index == person.blind_index).order_by(IdentityConflict.id.desc())))
    audit.record(audit.IDENTITY_VIEWED, actor=actor, person_id=person_id)
    return PersonView(person, affiliations, records, conflicts, get_account(person.account_id),
                      names({a.school_code for a in affiliations}))


def open_conflicts(limit: int = 100) -> list[tuple[IdentityConflict, Person | None]]:
    """Open conflicts, oldest first, each with its person (or None if the person is gone)."""
    conflicts = list(db.session.scalars(sa.select(IdentityConflict).where(IdentityConflict.status == "open")
                                        .order_by(IdentityConflict.id).limit(limit)))
    people = {p.blind_index: p for p in db.session.scalars(
        sa.select(Person).where(Person.blind_index.in_({c.blind_index for c in conflicts})))} if conflicts else {}
    return [(c, people.get(c.blind_index)) for c in conflicts]


def get_conflict(conflict_id: int) -> tuple[IdentityConflict, Person | None]:
    conflict = db.session.get(IdentityConflict, conflict_id)
    if conflict is None:
        raise NotFound()
    return conflict, person_by_index(conflict.blind_index)


def resolve_conflict(conflict_id: int, chosen: str, note: str, actor: str) -> IdentityConflict:
    """Close a conflict with the value the operator confirmed (one the sources gave) and a note
    saying how it was confirmed; the person takes that value. Audited."""
    conflict, person = get_conflict(conflict_id)
    if conflict.status != "open":
        raise InvalidField("chosen", _l("This conflict was already resolved."), status=409)
    if chosen not in {str(v) for v in conflict.values.values()}:
        raise InvalidField("chosen", _l("Choose one of the values the sources gave."))
    note = (note or "").strip()
    if not note:
        raise InvalidField("note", _l("Say how you confirmed the value (for the audit trail)."))
    values: dict[str, Any] = {}
    if conflict.field == "name":
        values["name"] = chosen
    elif len(chosen) == 10:  # a full date, or a source's month-day ("MMDD")
        values["birth_date"] = dt.date.fromisoformat(chosen)
    else:
        values["birth_month_day"] = chosen
    close_conflict(conflict_id, actor, note[:2000], **values)
    audit.record(audit.CONFLICT_RESOLVED, actor=actor, conflict_id=conflict_id, field=conflict.field,
                 person_id=person.id if person is not None else None,
                 source=sorted(s for s, v in conflict.values.items() if str(v) == chosen))
    db.session.flush()
    return conflict


def close_conflict(conflict_id: int, resolved_by: str, note: str, name: str | None = None,
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
    """Re-encrypt every person under the current key; returns how many rows moved. A batch job of the
    ``flask identity rotate`` command: it commits per batch, so an interrupted run keeps its progress."""
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


def get_person(person_id: int | None) -> Person | None:
    """The person with this id, or None (a flow keeps only the id between its steps)."""
    return db.session.get(Person, person_id) if person_id is not None else None


def own_data(person: Person) -> dict[str, Any]:
    """The person's own data a new password must not be built from (R-C2, NIST SP 800-63B):
    ``{"national_id": NationalId, "birthday": date | None}``. The number is decrypted here and
    handed on only as a ``NationalId`` (masked when printed), never as a string; ``birthday`` is
    None when the sources know only month and day."""
    return {"national_id": protection.decrypt(person.national_id_ciphertext), "birthday": person.birth_date}


def set_current_school(person: Person, school_code: str, *, actor: str) -> None:
    """The school the person just confirmed as theirs (applying, resetting with personal data, R-C4).
    It must be one of their current affiliations: a person cannot claim a school no source lists.
    Audited when it changes."""
    if not any(a.school_code == school_code and a.status == "active" for a in person.affiliations):
        raise InvalidField("school", _l("You are not listed at this school."))
    if person.current_school_code == school_code:
        return
    audit.record(audit.IDENTITY_SCHOOL_SET, actor=actor, person_id=person.id, school_code=school_code,
                 was=person.current_school_code)
    person.current_school_code = school_code
    db.session.flush()


def person_for_account(account_id: int) -> Person | None:
    """The person behind a cloud account, or None (a member, or an account not yet linked)."""
    return db.session.scalar(sa.select(Person).where(Person.account_id == account_id))


def has_identity(account_id: int) -> bool:
    """Is this account backed by a person known from a trusted source (R-A2 real name)?"""
    return db.session.scalar(sa.select(Person.id).where(Person.account_id == account_id)) is not None


def eduinfo(person: Person) -> dict:
    """The ministry's education claim for a person's current affiliations (without ``sub``).

    ``schoolid`` is the main school: the person's current school (the one they last confirmed),
    else the most recently seen current affiliation (a pupil's class before a staff post);
    ``titles`` lists per school the roles and titles (學生, 教師, 校長…); ``classinfo`` exists only for
    students. Numbers are strings, as the ministry's API returns them, so relying parties written
    for it parse the same JSON.
    """
    from idp.identity.models import Affiliation

    active = [a for a in db.session.scalars(
        sa.select(Affiliation).where(Affiliation.person_id == person.id, Affiliation.status == "active"))]
    # The school the person last confirmed (applying, resetting with personal data, R-C4) comes first.
    active.sort(key=lambda a: (a.school_code != person.current_school_code, ROLE_ORDER.get(a.role, 9),
                               -(a.last_seen.timestamp() if a.last_seen else 0), a.id))
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
