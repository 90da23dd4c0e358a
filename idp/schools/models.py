"""Counties, districts and schools with their official codes (R-S5).

A school's 6-character code is the key every source uses (the county systems' ``sch_code``,
the registry's ``schno``, webHR's ``orgCode``), so it is the primary key here and affiliations
refer to it by value. ``oid`` is the organisation OID in the school's certificate (組織與團體憑證):
the proxy platform's certificate sign-in maps a card to a school through it.
"""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from idp.db import TimestampMixin
from idp.extensions import db

# School levels (學制) in the order the pickers show them.
LEVELS = ("國小", "國中", "高中", "高職", "大專", "特殊教育", "實驗教育")
# Who owns the school: public (縣市立), national (國立) or private (私立).
OWNERSHIPS = ("公立", "國立", "私立")
# Who supervises it, which is where a proxy-platform application goes (R-P4).
AUTHORITIES = {
    "county": "縣市政府教育局處",
    "k12": "教育部國民及學前教育署",
    "moe": "教育部",
}


class County(db.Model):
    """A county or city (縣市) with the ministry's two-character code, e.g. 01 新北市."""

    __tablename__ = "county"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    name: Mapped[str] = mapped_column(String(20), unique=True)

    districts: Mapped[list[District]] = relationship(back_populates="county", order_by="District.name")


class District(db.Model):
    """A township or district (鄉鎮市區) of a county."""

    __tablename__ = "district"
    __table_args__ = (UniqueConstraint("county_code", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    county_code: Mapped[str] = mapped_column(ForeignKey("county.code", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(20))

    county: Mapped[County] = relationship(back_populates="districts")


class School(TimestampMixin, db.Model):
    """One school (or unit) as the ministry's directory lists it."""

    __tablename__ = "school"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    county_code: Mapped[str] = mapped_column(ForeignKey("county.code"), index=True)
    district_id: Mapped[int | None] = mapped_column(ForeignKey("district.id", ondelete="SET NULL"), index=True)
    level: Mapped[str] = mapped_column(String(10), index=True)
    ownership: Mapped[str] = mapped_column(String(4))
    authority: Mapped[str] = mapped_column(String(8))
    oid: Mapped[str | None] = mapped_column(String(64), unique=True)
    # A school that closed or merged stays (old affiliations name it) but leaves the pickers.
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    county: Mapped[County] = relationship()
    district: Mapped[District | None] = relationship()

    @property
    def authority_name(self) -> str:
        return AUTHORITIES.get(self.authority, self.authority)

    def __repr__(self) -> str:
        return f"School({self.code})"
