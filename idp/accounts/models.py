"""Accounts: general members and real-name cloud accounts (R-A1, R-A2)."""

from __future__ import annotations

import datetime as dt
import secrets

from sqlalchemy import Boolean, DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from idp.db import TimestampMixin, utcnow
from idp.extensions import db

# Why an account was disabled (R-C5): shown to operators, and decides whether the person may
# re-activate it themselves (students may, after identifying with their personal data).
DISABLED_INACTIVE = "inactivity"  # the inactivity rule (``account_inactivity_days``)
DISABLED_BY_OPERATOR = "operator"
DISABLED_REASONS = (DISABLED_INACTIVE, DISABLED_BY_OPERATOR)


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
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # Who disabled it, when and why (one of DISABLED_REASONS); cleared on re-activation.
    disabled_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disabled_reason: Mapped[str | None] = mapped_column(String(16))
    disabled_by: Mapped[str | None] = mapped_column(String(128))

    def get_user_id(self) -> int:
        """Authlib's user hook."""
        return self.id

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    def __repr__(self) -> str:
        return f"<Account {self.id} {self.kind}>"


class UsedUsername(db.Model):
    """Every account name ever taken, kept when an account is renamed or removed: a lifelong account
    name is never issued to someone else (R-A2), so an app that stored it never meets a stranger."""

    __tablename__ = "used_username"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id", ondelete="SET NULL"), index=True)
    taken_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
