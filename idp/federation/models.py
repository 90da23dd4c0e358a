"""Federated links: which person a county's subject is (R-L2, issue 12 item 3).

A county's ``sub`` is linked to a person once, on the first county sign-in that the county's own
records confirm (``identity.services.person_by_county_account``). The subject itself is never stored:
only a keyed hash of issuer and subject (HMAC-SHA-256 under ``identity_index_key``, its own domain),
so a copy of the table names nobody at any county. ``provider`` is the county entry's ``name``.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import DateTime, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import TimestampMixin
from idp.extensions import db


class FederatedLink(TimestampMixin, db.Model):
    __tablename__ = "federated_link"
    __table_args__ = (UniqueConstraint("provider", "subject_hash", name="uq_federated_link_provider_subject_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(30))
    subject_hash: Mapped[str] = mapped_column(String(64))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def __repr__(self) -> str:
        return f"FederatedLink(id={self.id}, provider={self.provider!r}, person_id={self.person_id})"
