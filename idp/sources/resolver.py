"""Merge what every source says about one national ID into one person (R-S2, R-S3, R-A2).

Set-based: ``merge_batch`` takes one source's records and, in a few multi-row statements,
(1) writes that source's mirror rows (``source_record``) that are new or changed, and goes on with
those records only (an unchanged one was merged when it last changed), (2) creates persons not yet known,
(3) compares name and birthday with every other source's mirror: agreement updates the person,
disagreement opens an ``IdentityConflict`` and leaves the person as it was (never a silent merge),
(4) upserts the affiliations the source reports and marks the ones it no longer reports ``left``.
``Person.account_id`` is never written here: a transfer changes affiliations, not the account.

A county source's record of a current pupil may carry their county account (R-L2): the mirror row
keeps only its keyed hash (``county_account_index``), and only while the source reports the pupil
at school (a 離校 record, or one without the account, clears it). ``mark_absent`` applies a complete
snapshot of a dropped file: whoever the source knew and the snapshot no longer lists is left.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import sqlalchemy as sa

from idp.db import utcnow
from idp.extensions import db
from idp.identity import protection
from idp.identity.models import Affiliation, IdentityConflict, Person, SourceRecord
from idp.identity.nationalid import NationalId
from idp.identity.services import person_by_index
from idp.sources.base import AffiliationRecord, PersonRecord, SourceError

log = logging.getLogger(__name__)


def _insert(table: sa.Table) -> Any:
    if db.engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table)


def _upsert(table: sa.Table, rows: list[dict[str, Any]], keys: list[str], update: list[str]) -> None:
    """Multi-row upsert. PostgreSQL: one ``INSERT ... SELECT FROM json_to_recordset ON CONFLICT`` per
    batch (one round trip, one plan, whatever the batch size); elsewhere the portable executemany path.
    Callers send only new or changed rows; the conflict clause covers a concurrent sync of the same rows."""
    if not rows:
        return
    if db.engine.dialect.name != "postgresql":
        stmt = _insert(table)
        stmt = (stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
                if update else stmt.on_conflict_do_nothing(index_elements=keys))
        _many(stmt, rows)
        return
    dialect = db.engine.dialect
    cols = list(rows[0])
    defs = ", ".join(f'"{c}" {"json" if isinstance(table.c[c].type, sa.JSON) else table.c[c].type.compile(dialect)}'
                     for c in cols)
    names = ", ".join(f'"{c}"' for c in cols)
    action = ("DO UPDATE SET " + ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in update)) if update else "DO NOTHING"
    # Only table and column names from our own metadata are interpolated; the rows are one bound JSON text.
    sql = (f"INSERT INTO {table.name} ({names}) SELECT {names} "  # noqa: S608
           f"FROM json_to_recordset(CAST(:rows AS json)) AS x({defs}) ON CONFLICT ({', '.join(keys)}) {action}")
    params = {"rows": _json(rows)}
    db.session.execute(sa.text(sql), params)


def _json(value: Any) -> str:
    """Compact JSON (the form the mirror keeps, so unchanged records compare equal), via orjson:
    encoding a batch with the standard library took a sixth of a sync's time."""
    return orjson.dumps(value, default=str).decode()


def _in(col: Any, values: list[Any]) -> Any:
    """``col IN values``: on PostgreSQL one JSON parameter however long the list (no per-item binds)."""
    if db.engine.dialect.name == "postgresql":
        elements = sa.func.json_array_elements_text(sa.cast(sa.bindparam(None, value=_json(list(values))), sa.JSON))
        return col.in_(sa.select(sa.cast(sa.column("value"), col.type)).select_from(elements))
    return col.in_(values)


def _many(stmt: Any, rows: list[dict[str, Any]]) -> None:
    """One statement compiled once, executed for all rows: SQLAlchemy's "insertmanyvalues" sends them
    as multi-row INSERT ... ON CONFLICT pages (PostgreSQL and SQLite alike), not a row at a time."""
    if rows:
        db.session.execute(stmt, rows, execution_options={"insertmanyvalues_page_size": 1000})


def merge_batch(source: str, records: Sequence[PersonRecord], now: dt.datetime | None = None) -> dict[str, int]:
    """Apply one batch of one source's records; returns counts. The caller commits.

    A daily feed mostly repeats what it said yesterday, and a record this source sends again
    unchanged was merged when it last changed: it costs one indexed read of this source's mirror and
    nothing else. Only new and changed records go on to the other reads (what the other sources say,
    the persons, this source's affiliations) and to writes, and only for what changed (an
    ``ON CONFLICT`` that finds nothing to change still locks and dirties the row). So an open
    conflict an operator has resolved stays resolved until a source changes what it says.
    """
    now = now or utcnow()
    prot = protection.protector()
    by_bi: dict[str, PersonRecord] = {}
    for rec in records:  # the last record for a person in a batch wins
        by_bi[prot.blind_index(rec.national_id)] = rec
    if not by_bi:
        return {"records": 0, "new_persons": 0, "conflicts": 0, "left": 0}
    mirror = [{"blind_index": bi, "name": rec.name, "birth_date": rec.birth_date, "birth_month_day": rec.month_day,
               "affiliations": [a.as_json() for a in rec.affiliations],
               "county_account_index": _account_index(prot, rec) if rec.county_account else None}
              for bi, rec in by_bi.items()]
    written = _write_mirror(source, mirror, now)
    counts = {"records": len(by_bi), "new_persons": 0, "conflicts": 0, "left": 0}
    if written:
        counts.update(_merge_persons(source, {bi: by_bi[bi] for bi in written}, now))
    return counts


def _account_index(prot: protection.Protector, rec: PersonRecord) -> str | None:
    """The keyed hash of the record's county account while the source reports the pupil at school:
    a pupil who left (離校) cannot be found by their county account any more."""
    ca = rec.county_account
    if ca is None or not any(a.active for a in rec.affiliations):
        return None
    return prot.county_account_index(ca.county, ca.account)


MIRROR_FIELDS = ("name", "birth_date", "birth_month_day", "affiliations", "county_account_index")
_WRITE_MIRROR_PG = sa.text("""
    WITH x AS (SELECT * FROM json_to_recordset(CAST(:rows AS json))
               AS x(blind_index varchar, name varchar, birth_date date, birth_month_day varchar, affiliations json,
                    county_account_index varchar))
    INSERT INTO source_record (source, blind_index, name, birth_date, birth_month_day, affiliations,
                               county_account_index, seen_at)
    SELECT :source, x.blind_index, x.name, x.birth_date, x.birth_month_day, x.affiliations, x.county_account_index,
           :now
    FROM x LEFT JOIN source_record s ON s.source = :source AND s.blind_index = x.blind_index
    WHERE s.id IS NULL
       OR (s.name, s.birth_date, s.birth_month_day, CAST(s.affiliations AS text), s.county_account_index)
          IS DISTINCT FROM (x.name, x.birth_date, x.birth_month_day, CAST(x.affiliations AS text),
                            x.county_account_index)
    ON CONFLICT (source, blind_index) DO UPDATE SET
        name = EXCLUDED.name, birth_date = EXCLUDED.birth_date, birth_month_day = EXCLUDED.birth_month_day,
        affiliations = EXCLUDED.affiliations, county_account_index = EXCLUDED.county_account_index,
        seen_at = EXCLUDED.seen_at
    RETURNING blind_index""")


def _write_mirror(source: str, rows: list[dict[str, Any]], now: dt.datetime) -> list[str]:
    """Store this source's view of these people where it differs from what it said last time;
    returns the blind indexes written (new or changed).

    PostgreSQL compares and writes in the one statement, so an unchanged record costs an index probe
    and never travels back: the page goes over as one JSON text, the stored JSON is compared as the
    text we wrote (``_json``) and only the written indexes come back. Elsewhere the same diff is
    made here and the changed rows upserted."""
    sr = SourceRecord.__table__
    if db.engine.dialect.name == "postgresql":
        return list(db.session.execute(_WRITE_MIRROR_PG, {"rows": _json(rows), "source": source, "now": now}).scalars())
    stored = {row[0]: row[1:] for row in db.session.execute(
        sa.select(sr.c.blind_index, *[sr.c[f] for f in MIRROR_FIELDS])
        .where(sr.c.source == source, _in(sr.c.blind_index, [r["blind_index"] for r in rows]))).all()}
    changed = [{**r, "source": source, "seen_at": now} for r in rows
               if stored.get(r["blind_index"]) != tuple(r[f] for f in MIRROR_FIELDS)]
    _upsert(sr, changed, ["source", "blind_index"], [*MIRROR_FIELDS, "seen_at"])
    return [r["blind_index"] for r in changed]


def _merge_persons(source: str, by_bi: dict[str, PersonRecord], now: dt.datetime) -> dict[str, int]:
    """The persons behind new or changed records: created, updated where every source agrees, a
    conflict opened where they do not; then their affiliations from this source."""
    prot = protection.protector()
    sr, pt = SourceRecord.__table__, Person.__table__
    bis = list(by_bi)
    md = {bi: rec.month_day for bi, rec in by_bi.items()}
    others: dict[str, list[Any]] = {}
    for row in db.session.execute(sa.select(sr.c.source, sr.c.blind_index, sr.c.name, sr.c.birth_date,
                                            sr.c.birth_month_day)
                                  .where(_in(sr.c.blind_index, bis), sr.c.source != source)).all():
        others.setdefault(row.blind_index, []).append(row)

    existing = {row.blind_index: row for row in db.session.execute(
        sa.select(pt.c.id, pt.c.blind_index, pt.c.name, pt.c.birth_date, pt.c.birth_month_day)
        .where(_in(pt.c.blind_index, bis))).all()}
    new_rows, updates, conflicts = [], [], []
    for bi, rec in by_bi.items():
        views = [(source, rec.name, rec.birth_date, md[bi])] + [
            (o.source, o.name, o.birth_date, o.birth_month_day) for o in others.get(bi, [])]
        names = {v[1] for v in views}
        full = {v[2] for v in views if v[2]}
        mds = {v[3] for v in views if v[3]}
        name_ok, bday_ok = len(names) == 1, len(full) <= 1 and len(mds) <= 1
        if not name_ok:
            conflicts.append((bi, "name", {v[0]: v[1] for v in views}))
        if not bday_ok:
            conflicts.append((bi, "birthday", {v[0]: (v[2].isoformat() if v[2] else v[3]) for v in views}))
        if bi not in existing:
            new_rows.append({"blind_index": bi, "national_id_ciphertext": prot.encrypt(rec.national_id),
                             "name": rec.name, "birth_date": rec.birth_date, "birth_month_day": md[bi],
                             "created_at": now, "updated_at": now})
        else:
            cur = existing[bi]
            want_name = rec.name if name_ok else cur.name
            want_full = (next(iter(full)) if full else None) if bday_ok else cur.birth_date
            want_md = (next(iter(mds)) if mds else None) if bday_ok else cur.birth_month_day
            if (want_name, want_full, want_md) != (cur.name, cur.birth_date, cur.birth_month_day):
                updates.append({"pid": cur.id, "n": want_name, "bd": want_full, "md": want_md})
    _upsert(pt, new_rows, ["blind_index"], [])
    if updates and db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text(
            "UPDATE person SET name = u.n, birth_date = u.bd, birth_month_day = u.md, updated_at = :now "
            "FROM json_to_recordset(CAST(:rows AS json)) AS u(pid integer, n varchar, bd date, md varchar) "
            "WHERE person.id = u.pid"), {"now": now, "rows": _json(updates)})
    elif updates:
        db.session.execute(sa.update(pt).where(pt.c.id == sa.bindparam("pid")).values(
            name=sa.bindparam("n"), birth_date=sa.bindparam("bd"), birth_month_day=sa.bindparam("md"),
            updated_at=now), updates, execution_options={"synchronize_session": False})
    _record_conflicts(conflicts)

    ids = {bi: row.id for bi, row in existing.items()}
    if new_rows:
        ids.update(db.session.execute(sa.select(pt.c.blind_index, pt.c.id).where(
            _in(pt.c.blind_index, [r["blind_index"] for r in new_rows]))).all())
    left = _merge_affiliations(source, by_bi, ids, now)
    return {"new_persons": len(new_rows), "conflicts": len(conflicts), "left": left}


AFFILIATION_FIELDS = ("title", "grade", "class_no", "class_name", "academic_year", "semester", "status")


def _merge_affiliations(source: str, by_bi: dict[str, PersonRecord], ids: dict[str, int], now: dt.datetime) -> int:
    """Write the affiliations this source reports that are new or changed, and mark ``left`` the
    active ones it no longer reports for these people (a transfer, a graduation, a post given up);
    an affiliation is never deleted. ``last_seen`` is when the source last reported a change.
    Returns how many of these people were current at this source and are not any more (a 離校
    record; a transfer within the source is no leaving)."""
    at = Affiliation.__table__
    reported: dict[tuple, AffiliationRecord] = {}
    for bi, rec in by_bi.items():
        for a in rec.affiliations:
            reported[(ids[bi], a.school_code, a.role)] = a
    # (person_id, school_code, role) -> (id, *AFFILIATION_FIELDS)
    stored = {tuple(r[1:4]): (r[0], tuple(r[4:])) for r in db.session.execute(
        sa.select(at.c.id, at.c.person_id, at.c.school_code, at.c.role, *[at.c[f] for f in AFFILIATION_FIELDS])
        .where(at.c.source == source, _in(at.c.person_id, list(ids.values())))).all()}
    changed = [_aff_row(key[0], source, a, now) for key, a in reported.items()
               if key not in stored or stored[key][1] != a.values]
    _upsert(at, changed, ["person_id", "source", "school_code", "role"], [*AFFILIATION_FIELDS, "last_seen"])
    gone = [row_id for key, (row_id, values) in stored.items() if key not in reported and values[-1] == "active"]
    if gone:
        db.session.execute(sa.update(at).where(_in(at.c.id, gone)).values(status="left", last_seen=now),
                           execution_options={"synchronize_session": False})
    was_current = {key[0] for key, (_, values) in stored.items() if values[-1] == "active"}
    return len(was_current - {key[0] for key, a in reported.items() if a.active})


class SnapshotRefused(SourceError):
    """A snapshot that would make too many people leavers at once (a truncated or wrong file): not
    applied, nobody is marked as left. The message holds counts only."""


def mark_absent(source: str, present: Iterable[NationalId], now: dt.datetime | None = None,
                max_left_share: float = 0.5) -> int:
    """Apply a complete snapshot of ``source`` (a dropped file read to its end; ``present``: everybody
    it lists): whoever the source knew and the snapshot no longer lists loses this source's current
    affiliations (marked ``left``, as a 離校 record would) and the county account it carried, and its
    mirror row says so, so that the person listed again later is a change and becomes current again.
    Returns how many people left. The caller commits.

    Refused (``SnapshotRefused``, nothing marked) when the snapshot lists nobody, or when more than
    ``max_left_share`` of the people it knows as current would leave at once: a file cut short at a
    line boundary parses, and must not end the county login of a whole county. A school year's end
    (a sixth to a third of the pupils) stays well under the default half."""
    now = now or utcnow()
    prot = protection.protector()
    listed = {prot.blind_index(nid) for nid in present}
    if not listed:
        raise SnapshotRefused(f"source {source}: the snapshot lists nobody; nobody is marked as left")
    sr, at, pt = SourceRecord.__table__, Affiliation.__table__, Person.__table__
    # Who is current at this source now (not everybody it ever knew: past leavers are left already).
    current = db.session.execute(sa.select(pt.c.id, pt.c.blind_index).distinct()
                                 .select_from(at.join(pt, pt.c.id == at.c.person_id))
                                 .where(at.c.source == source, at.c.status == "active")).all()
    leaving = {pid: bi for pid, bi in current if bi not in listed}
    if not leaving:
        return 0
    if len(leaving) > max_left_share * (len(leaving) + len(listed)):
        raise SnapshotRefused(
            f"source {source}: the snapshot would mark {len(leaving)} of {len(leaving) + len(listed)} people as "
            f"left (more than {max_left_share:.0%} at once); not applied, nobody is marked as left: check the "
            "file, or raise snapshot_max_left for this source")
    for chunk in _chunks(list(leaving)):
        db.session.execute(sa.update(at).where(at.c.source == source, at.c.status == "active",
                                               _in(at.c.person_id, chunk)).values(status="left", last_seen=now),
                           execution_options={"synchronize_session": False})
    updates = []
    for chunk in _chunks(list(leaving.values())):
        for rid, affs in db.session.execute(sa.select(sr.c.id, sr.c.affiliations)
                                            .where(sr.c.source == source, _in(sr.c.blind_index, chunk))):
            updates.append({"rid": rid, "affs": [{**a, "active": False} for a in affs or ()]})
    if updates and db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text(
            "UPDATE source_record SET affiliations = u.affs, county_account_index = NULL, seen_at = :now "
            "FROM json_to_recordset(CAST(:rows AS json)) AS u(rid integer, affs json) WHERE source_record.id = u.rid"),
            {"now": now, "rows": _json(updates)})
    elif updates:
        db.session.execute(sa.update(sr).where(sr.c.id == sa.bindparam("rid")).values(
            affiliations=sa.bindparam("affs"), county_account_index=None, seen_at=now), updates,
            execution_options={"synchronize_session": False})
    return len(leaving)


def _chunks(values: list[Any]) -> Iterable[list[Any]]:
    """The whole list on PostgreSQL (``_in`` sends one JSON parameter); elsewhere slices that stay
    under SQLite's limit of bound parameters."""
    size = len(values) if db.engine.dialect.name == "postgresql" else 10_000
    for i in range(0, len(values), max(size, 1)):
        yield values[i:i + size]


def _aff_row(person_id: int, source: str, a: AffiliationRecord, now: dt.datetime) -> dict[str, Any]:
    return {"person_id": person_id, "source": source, "school_code": a.school_code, "role": a.role,
            "title": a.title, "grade": a.grade, "class_no": a.class_no, "class_name": a.class_name,
            "academic_year": a.academic_year, "semester": a.semester, "status": "active" if a.active else "left",
            "first_seen": now, "last_seen": now}


def _record_conflicts(conflicts: list[tuple[str, str, dict[str, Any]]]) -> None:
    """One open conflict per (person, field); its values are refreshed, never duplicated."""
    if not conflicts:
        return
    ct = IdentityConflict.__table__
    open_ = {(r.blind_index, r.field): r.id for r in db.session.execute(
        sa.select(ct.c.id, ct.c.blind_index, ct.c.field).where(
            ct.c.blind_index.in_({c[0] for c in conflicts}), ct.c.status == "open"))}
    for bi, fld, values in conflicts:
        if (bi, fld) in open_:
            db.session.execute(sa.update(ct).where(ct.c.id == open_[(bi, fld)]).values(values=values))
        else:
            db.session.execute(sa.insert(ct).values(blind_index=bi, field=fld, values=values, status="open"))
            log.warning("identity conflict on %s between sources %s", fld, ", ".join(sorted(values)))


def mirrored_records(source: str, blind_index: str) -> list[PersonRecord]:
    """What ``source`` last said about a person, rebuilt from the mirror (decrypting via protection)."""
    row = db.session.execute(sa.select(SourceRecord).where(SourceRecord.source == source,
                                                           SourceRecord.blind_index == blind_index)).scalar()
    person = db.session.execute(sa.select(Person).where(Person.blind_index == blind_index)).scalar()
    if row is None or person is None:
        return []
    return [PersonRecord(source=source, national_id=protection.decrypt(person.national_id_ciphertext),
                         name=row.name, birth_date=row.birth_date, birth_month_day=row.birth_month_day,
                         affiliations=tuple(AffiliationRecord(**a) for a in row.affiliations))]


AffiliationRow = collections.namedtuple("AffiliationRow", [c.name for c in Affiliation.__table__.columns])


def _identity_statement() -> sa.Select:
    pt, sr, at = Person.__table__, SourceRecord.__table__, Affiliation.__table__
    bi = sa.bindparam("bi", type_=pt.c.blind_index.type)
    sources = sa.select(sa.func.aggregate_strings(sr.c.source, ",")).where(sr.c.blind_index == bi).scalar_subquery()
    return (sa.select(pt.c.id, pt.c.name, pt.c.birth_date, pt.c.birth_month_day, pt.c.account_id, sources,
                      *at.columns)
            .select_from(pt.outerjoin(at, (at.c.person_id == pt.c.id) & (at.c.status == "active")))
            .where(pt.c.blind_index == bi).order_by(at.c.id))


# Built once: constructing the statement and its cache key on every call cost more than running it.
_IDENTITY = _identity_statement()


def identity(blind_index: str) -> dict[str, Any] | None:
    """The resolved identity: name, birthday, current (active) affiliations, the sources that know it.

    One statement and plain rows, not ORM objects: this is the look-up every application, recovery
    and eduinfo call makes. Three statements (person, sources, affiliations) spent most of their time
    in round trips, and an entity with a lazy relationship cost more than all of them."""
    rows = db.session.execute(_IDENTITY, {"bi": blind_index}).all()
    if not rows:
        return None
    p, n = rows[0], 6  # the person's columns, then the affiliation's (none when it has no active one)
    return {"person_id": p[0], "name": p[1], "birth_date": p[2], "birth_month_day": p[3], "account_id": p[4],
            "sources": sorted(p[5].split(",")) if p[5] else [],
            "affiliations": [AffiliationRow(*r[n:]) for r in rows if r[n] is not None]}


def match(name: str | None, national_id: NationalId, birthday: dt.date) -> Person | None:
    """The person whose sources hold this name (any name when None: 忘記帳號 asks only ID and
    birthday), ID and birthday (R-S3: a month-day-only source matches on month and day). A person with
    an open conflict on the typed field matches if any source agrees."""
    bi = protection.blind_index(national_id)
    person = person_by_index(bi)
    if person is None:
        return None
    rows = db.session.execute(sa.select(SourceRecord).where(SourceRecord.blind_index == bi)).scalars().all()
    typed_md = birthday.strftime("%m%d")
    for r in rows or []:
        if name is not None and r.name.strip() != name.strip():
            continue
        if r.birth_date is not None and r.birth_date == birthday:
            return person
        if r.birth_date is None and r.birth_month_day == typed_md:
            return person
    return None
