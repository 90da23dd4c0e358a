"""Reports that reach customer service (R-C3)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, DateTime, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import TimestampMixin
from idp.extensions import db

# A report's life: customer service sees it (new), answers the reporter (answered), closes it.
NEW, ANSWERED, CLOSED = "new", "answered", "closed"
STATUSES = (NEW, ANSWERED, CLOSED)
SCHOOL_MISSING = "school_missing"


class SupportReport(TimestampMixin, db.Model):
    """One report from a person who could not go on by themselves ("我找不到我的學校")."""

    __tablename__ = "support_report"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default=SCHOOL_MISSING)
    status: Mapped[str] = mapped_column(String(10), default=NEW, index=True)
    county: Mapped[str] = mapped_column(String(20))
    school_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(254))
    message: Mapped[str] = mapped_column(Text, default="")
    # The reporter's language, so an answer by mail is written in it.
    locale: Mapped[str | None] = mapped_column(String(16))
    answer: Mapped[str | None] = mapped_column(Text)
    answered_by: Mapped[str | None] = mapped_column(String(128))
    answered_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    answer_mailed: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_by: Mapped[str | None] = mapped_column(String(128))
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"SupportReport({self.id}, {self.status})"
