"""The proxy platform (代理平台): rosters schools upload themselves, read from our own tables.

Rosters hold only month and day of birth (R-S3). The cursor is the last ``RosterEntry.id`` read.
``load_roster`` turns a CSV (姓名, 使用者識別碼, 生日 MMDD, 年級, 班級, 班級名稱) into a
``RosterUpload`` with its entries; invalid rows are reported by line number, never by ID.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from idp.extensions import db
from idp.identity import protection
from idp.identity.models import RosterEntry, RosterUpload
from idp.identity.nationalid import InvalidNationalId, NationalId
from idp.sources.base import AffiliationRecord, Page, PersonRecord


class ProxyRoster:
    name = "proxy"

    def __init__(self, name: str | None = None, batch_size: int = 5000, **_: Any) -> None:
        self.name = name or self.name
        self.batch_size = batch_size

    def _to_record(self, e: RosterEntry, u: RosterUpload) -> PersonRecord:
        aff = AffiliationRecord(school_code=u.school_code, role=u.role, grade=e.grade, class_no=e.class_no,
                                class_name=e.class_name, academic_year=u.academic_year, semester=u.semester)
        return PersonRecord(source=self.name, national_id=protection.decrypt(e.national_id_ciphertext),
                            name=e.name, birth_month_day=e.birth_month_day, affiliations=(aff,))

    def lookup(self, blind_index: str) -> list[PersonRecord]:
        rows = db.session.execute(sa.select(RosterEntry, RosterUpload).join(RosterUpload).where(
            RosterEntry.blind_index == blind_index).order_by(RosterEntry.id.desc()).limit(1)).all()
        return [self._to_record(e, u) for e, u in rows]

    def list_school(self, school_code: str) -> Iterable[PersonRecord]:
        rows = db.session.execute(sa.select(RosterEntry, RosterUpload).join(RosterUpload).where(
            RosterUpload.school_code == school_code).order_by(RosterEntry.id)).all()
        return [self._to_record(e, u) for e, u in rows]

    def changes(self, cursor: str) -> Page:
        """Roster rows were validated when they were loaded: nothing here is rejected."""
        start = int(cursor or 0)
        rows = db.session.execute(sa.select(RosterEntry, RosterUpload).join(RosterUpload).where(
            RosterEntry.id > start).order_by(RosterEntry.id).limit(self.batch_size)).all()
        if not rows:
            return Page([], cursor)
        return Page([self._to_record(e, u) for e, u in rows], str(rows[-1][0].id))


class RosterError(ValueError):
    """The roster file has errors; ``errors`` lists (line, reason)."""

    def __init__(self, errors: list[tuple[int, str]]) -> None:
        super().__init__(f"{len(errors)} invalid row(s)")
        self.errors = errors


def load_roster(text: str, school_code: str, academic_year: int, semester: int, role: str,
                filename: str = "roster.csv", uploaded_by: str | None = None) -> RosterUpload:
    """Validate every row, then store the upload (all or nothing). The caller commits."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    errors: list[tuple[int, str]] = []
    entries: list[RosterEntry] = []
    for line, row in enumerate(reader, start=2):
        try:
            nid = NationalId.parse(row.get("使用者識別碼") or "")
        except InvalidNationalId as exc:
            errors.append((line, exc.reason))
            continue
        md = (row.get("生日") or "").strip().zfill(4) or None
        if md and not (md.isdigit() and 1 <= int(md[:2]) <= 12 and 1 <= int(md[2:]) <= 31):
            errors.append((line, "birthday"))
            continue
        name = (row.get("姓名") or "").strip()
        if not name:
            errors.append((line, "name"))
            continue
        grade = (row.get("年級") or "").strip()
        entries.append(RosterEntry(
            blind_index=protection.blind_index(nid), national_id_ciphertext=protection.encrypt(nid), name=name,
            birth_month_day=md, grade=int(grade) if grade.isdigit() else None,
            class_no=(row.get("班級") or "").strip() or None, class_name=(row.get("班級名稱") or "").strip() or None))
    if errors:
        raise RosterError(errors)
    upload = RosterUpload(school_code=school_code, academic_year=academic_year, semester=semester, role=role,
                          filename=filename, uploaded_by=uploaded_by, row_count=len(entries), entries=entries)
    db.session.add(upload)
    db.session.flush()
    return upload
