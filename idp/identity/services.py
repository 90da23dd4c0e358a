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


def find_person(raw_id: str) -> Person | None:
    """Parse (raises InvalidNationalId), hash, look up."""
    bi = protection.blind_index(NationalId.parse(raw_id))
    return db.session.scalar(sa.select(Person).where(Person.blind_index == bi))


def open_conflicts(limit: int = 100) -> list[IdentityConflict]:
    return list(db.session.scalars(sa.select(IdentityConflict).where(IdentityConflict.status == "open")
                                   .order_by(IdentityConflict.id).limit(limit)))


def resolve_conflict(conflict_id: int, resolved_by: str, note: str, name: str | None = None,
                     birth_date: dt.date | None = None) -> IdentityConflict:
    """Close a conflict, optionally setting the value the operator confirmed on the person. Caller commits."""
    conflict = db.session.get(IdentityConflict, conflict_id)
    if conflict is None:
        raise NotFound()
    person = db.session.scalar(sa.select(Person).where(Person.blind_index == conflict.blind_index))
    if person is not None and name:
        person.name = name
    if person is not None and birth_date:
        person.birth_date, person.birth_month_day = birth_date, birth_date.strftime("%m%d")
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
