"""Persons known from trusted sources, their affiliations, sync cursors and conflicts (R-S2, R-A2).

A ``Person`` is keyed by the blind index of the national ID; the number itself is only held
encrypted. ``account_id`` is unique: at most one cloud account per person, and the link is never
touched by a sync (a transfer changes affiliations, not the account).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy import text as sa_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.db import TimestampMixin, utcnow
from idp.extensions import db

ROLES = ("學生", "教師", "職員")


def academic_term(day: dt.date) -> tuple[int, int]:
    """(ROC academic year, semester) of a day: the year runs 1 Aug – 31 Jul; semester 1 = Aug–Jan."""
    start_year = day.year if day.month >= 8 else day.year - 1
    semester = 1 if day.month >= 8 or day.month == 1 else 2
    return start_year - 1911, semester


class Person(TimestampMixin, db.Model):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    blind_index: Mapped[str] = mapped_column(String(64), unique=True)
    national_id_ciphertext: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    birth_month_day: Mapped[str | None] = mapped_column(String(4))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), unique=True)
    # The school the person last confirmed as theirs (applying, resetting a password with their
    # personal data, R-C4): among several current affiliations it is the one apps see first.
    current_school_code: Mapped[str | None] = mapped_column(String(6))

    affiliations: Mapped[list[Affiliation]] = relationship(back_populates="person", cascade="all, delete-orphan",
                                                           order_by="Affiliation.id")

    def __repr__(self) -> str:
        return f"Person(id={self.id})"


class Affiliation(db.Model):
    __tablename__ = "affiliation"
    # The unique constraint leads with person_id, so it also serves look-ups by person: a separate
    # person_id index would only be one more index for every sync to write.
    __table_args__ = (UniqueConstraint("person_id", "source", "school_code", "role",
                                       name="uq_affiliation_person_source_school_role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))
    school_code: Mapped[str] = mapped_column(String(6), index=True)
    role: Mapped[str] = mapped_column(String(10))
    title: Mapped[str | None] = mapped_column(String(40))
    grade: Mapped[int | None] = mapped_column(SmallInteger)
    class_no: Mapped[str | None] = mapped_column(String(10))
    class_name: Mapped[str | None] = mapped_column(String(40))
    academic_year: Mapped[int | None] = mapped_column(SmallInteger)
    semester: Mapped[int | None] = mapped_column(SmallInteger)
    status: Mapped[str] = mapped_column(String(10), default="active")
    first_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    person: Mapped[Person] = relationship(back_populates="affiliations")


class SourceRecord(db.Model):
    """What one source last said about one person (by blind index): the resolver merges these.

    ``county_account_index``: a county source's record of a current pupil may carry the pupil's
    account at the county (縣市帳號, R-L2), kept only as ``protection.county_account_index`` (the
    county code is inside the hash). It is cleared when the source says the pupil left or stops
    sending the account, so a county login finds only the county's current pupils."""

    __tablename__ = "source_record"
    # Blind index first: the one index serves "what does every source say about this person" and
    # "what did this source say" alike (one index fewer for every sync to write, migration 0004).
    # The county-account index is partial: rows without an account (most sources) cost a sync nothing.
    __table_args__ = (UniqueConstraint("blind_index", "source", name="uq_source_record_blind_index_source"),
                      Index("ix_source_record_county_account_index", "county_account_index",
                            postgresql_where=sa_text("county_account_index IS NOT NULL"),
                            sqlite_where=sa_text("county_account_index IS NOT NULL")))

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    blind_index: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[dt.date | None] = mapped_column(Date)
    birth_month_day: Mapped[str | None] = mapped_column(String(4))
    affiliations: Mapped[list] = mapped_column(JSON, default=list)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    county_account_index: Mapped[str | None] = mapped_column(String(64))


class SourceCursor(db.Model):
    """Where a source's change feed was last read up to; committed with the batch it ends."""

    __tablename__ = "source_cursor"

    source: Mapped[str] = mapped_column(String(40), primary_key=True)
    cursor: Mapped[str] = mapped_column(Text, default="")
    records_total: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class IdentityConflict(TimestampMixin, db.Model):
    """Sources disagree about one person (name or birthday): an operator decides, nothing is merged."""

    __tablename__ = "identity_conflict"

    id: Mapped[int] = mapped_column(primary_key=True)
    blind_index: Mapped[str] = mapped_column(String(64), index=True)
    field: Mapped[str] = mapped_column(String(20))
    values: Mapped[dict] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="open")
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)


class RosterUpload(TimestampMixin, db.Model):
    """A roster file a school uploaded to the proxy platform (代理平台)."""

    __tablename__ = "roster_upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    school_code: Mapped[str] = mapped_column(String(6), index=True)
    academic_year: Mapped[int] = mapped_column(SmallInteger)
    semester: Mapped[int] = mapped_column(SmallInteger)
    role: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(200))
    uploaded_by: Mapped[str | None] = mapped_column(String(100))
    row_count: Mapped[int] = mapped_column(Integer, default=0)

    entries: Mapped[list[RosterEntry]] = relationship(back_populates="upload", cascade="all, delete-orphan")


class RosterEntry(db.Model):
    """One row of a roster: the national ID only as blind index + ciphertext, birthday as MMDD."""

    __tablename__ = "roster_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("roster_upload.id", ondelete="CASCADE"), index=True)
    blind_index: Mapped[str] = mapped_column(String(64), index=True)
    national_id_ciphertext: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(100))
    birth_month_day: Mapped[str | None] = mapped_column(String(4))
    grade: Mapped[int | None] = mapped_column(SmallInteger)
    class_no: Mapped[str | None] = mapped_column(String(10))
    class_name: Mapped[str | None] = mapped_column(String(40))

    upload: Mapped[RosterUpload] = relationship(back_populates="entries")
