"""Accounts: general members and real-name cloud accounts (R-A1, R-A2)."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Boolean, DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import TimestampMixin
from idp.extensions import db


def new_public_id() -> str:
    """A random, never-reused identifier; subjects are derived from it, never from the row id."""
    return secrets.token_urlsafe(16)


class Account(TimestampMixin, db.Model):
    """One sign-in account. A cloud account is lifelong: only its affiliations change."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    # The name the person chose; compared case-insensitively (stored lower-cased).
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(100), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str | None] = mapped_column(String(32))
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    # "member" (R-A1, e-mail verified, not real-name) or "cloud" (R-A2, real-name).
    kind: Mapped[str] = mapped_column(String(16), default="member")
    # "active" or "disabled" (R-C5).
    status: Mapped[str] = mapped_column(String(16), default="active")
    is_operator: Mapped[bool] = mapped_column(Boolean, default=False)
    locale: Mapped[str | None] = mapped_column(String(16))
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    def get_user_id(self) -> int:
        """Authlib's user hook."""
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.kind}>"
