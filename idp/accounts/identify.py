"""Identifying a person by their personal data: the step apply, reset and activate share (R-C2, R-C4, R-C5, R-C6).

The seed's flows all go: choose the school (county → district → level → school), confirm it, then
type name, ID (or residence-permit) number, birthday and a captcha. This module holds those two
forms and the one service behind them, so the three flows ask the same way, answer the same way
and are limited the same way:

- ``recover.ip`` (per address) and ``recover.id`` (per number) count the attempts that find nobody,
  so personal data cannot be guessed through these pages (a captcha guards each attempt too);
- the typed number is parsed (its error says what is wrong with it), turned into its blind index
  and goes no further: the result carries the person's id and the masked number only;
- "no personal data" (R-C6) names the database the school's data comes from and what to ask the
  school's IT lead (資訊組長), because the fix is there, not here; it is the same answer whether the
  number is unknown, the name or birthday differs or the person is not at that school.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.validators import DataRequired, Length, ValidationError

from idp.errors import IdpError
from idp.extensions import settings
from idp.identity import services as identity
from idp.identity.nationalid import InvalidNationalId, NationalId
from idp.security import ratelimit

ROLES = ("學生", "教師", "職員")


def role_label(role: str) -> Any:
    return {"學生": _l("Student"), "教師": _l("Teacher"), "職員": _l("Staff")}.get(role, role)


# -- the school --------------------------------------------------------------------------------
class SchoolForm(FlaskForm):
    """County → district → level → school. Choices are filled from the directory for what was chosen
    so far (``fill``), so the cascade also works without JavaScript, one submit at a time; with
    JavaScript (static/schools.js) each select fills the next at once from /api/schools."""

    county = SelectField(_l("County or city"), validate_choice=False)
    district = SelectField(_l("District"), validate_choice=False)
    level = SelectField(_l("School level"), validate_choice=False)
    school = SelectField(_l("School"), validate_choice=False)

    def fill(self) -> None:
        """Offer the choices that fit what is selected; drop selections that no longer fit."""
        from idp.schools import services as schools

        blank = [("", _l("Please choose"))]
        self.county.choices = blank + [(c["code"], c["name"]) for c in schools.counties()]
        county = self.county.data if self.county.data in {c for c, _ in self.county.choices[1:]} else ""
        districts = schools.districts(county) if county else []
        self.district.choices = blank + [(str(d["id"]), d["name"]) for d in districts]
        district = self.district.data if self.district.data in {str(d["id"]) for d in districts} else ""
        levels = schools.levels(county, int(district)) if district else []
        self.level.choices = blank + [(lv, lv) for lv in levels]
        level = self.level.data if self.level.data in levels else ""
        found = schools.schools(county, int(district), level) if level else []
        self.school.choices = blank + [(s.code, s.name) for s in found]
        self.county.data, self.district.data, self.level.data = county, district, level
        if self.school.data not in {s.code for s in found}:
            self.school.data = ""

    def validate_school(self, field: Any) -> None:
        for step in (self.county, self.district, self.level, self.school):
            if not step.data:
                step.errors = [*step.errors, _l("Please choose.")]
                raise ValidationError(_l("Please choose your school."))

    @staticmethod
    def data_for(chosen: dict[str, str] | None) -> dict[str, str] | None:
        """The picker's four selections for a school chosen before (a person back at this step)."""
        from idp.schools import services as schools

        found = schools.get_school(chosen["school_code"]) if chosen else None
        if found is None:
            return None
        return {"county": found.county_code, "district": str(found.district_id or ""), "level": found.level,
                "school": found.code}

    def opened_list(self) -> Any:
        """Without JavaScript the cascade goes one submit at a time: the list a submit just opened (the
        first empty field after a chosen one, when it has choices), or None. A choice that opened the
        next list is progress, not a mistake: ``show_progress`` clears the errors for it."""
        steps = (self.county, self.district, self.level, self.school)
        for before, field in itertools.pairwise(steps):
            if before.data and not field.data:
                return field if len(field.choices) > 1 else None
        return None

    def show_progress(self) -> Any:
        opened = self.opened_list()
        if opened is not None:
            for f in (self.county, self.district, self.level, self.school):
                f.errors = []
        return opened

    def chosen(self) -> dict[str, str]:
        """What the confirmation step shows (names, not codes) and the flow keeps."""
        labels = {f.name: dict(f.choices).get(f.data, "") for f in (self.county, self.district, self.school)}
        return {"school_code": self.school.data, "county": str(labels["county"]),
                "district": str(labels["district"]), "level": self.level.data, "school_name": str(labels["school"])}


# -- the person -------------------------------------------------------------------------------
class PersonalDataForm(FlaskForm):
    """Name, ID or residence-permit number, birthday and a captcha."""

    name = StringField(_l("Full name"), validators=[DataRequired(_l("Please enter your name.")), Length(max=100)],
                       render_kw={"autocomplete": "name"})
    national_id = StringField(_l("National ID or residence-permit number"),
                              validators=[DataRequired(_l("Please enter the national ID or residence-permit number."))],
                              render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
                                         "maxlength": "12"})
    birthday = DateField(_l("Birthday"), validators=[DataRequired(_l("Please enter your birthday."))],
                         render_kw={"autocomplete": "bday", "max": dt.date.today().isoformat()})

    def validate_national_id(self, field: Any) -> None:
        raw, field.data = field.data or "", ""  # never echoed back into the page, well-formed or not
        try:
            self.parsed_id = NationalId.parse(raw)
        except InvalidNationalId as exc:
            raise ValidationError(exc.message) from None

    def validate_birthday(self, field: Any) -> None:
        if field.data and not dt.date(1900, 1, 1) <= field.data <= dt.date.today():
            raise ValidationError(_l("Please check the birthday."))


def personal_data_form(*args: Any, **kwargs: Any) -> PersonalDataForm:
    """The form with the captcha field added (the captcha module is a separate part)."""
    from idp.security import captcha

    class WithCaptcha(PersonalDataForm):
        captcha_code = captcha.CaptchaField(_l("Security code"))

    return WithCaptcha(*args, **kwargs)


# -- the answer -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Identified:
    """Who was found: enough to confirm with the person and carry on, nothing to leak."""

    person_id: int
    account_id: int | None
    masked_id: str
    name: str
    school_code: str
    role: str

    def as_state(self) -> dict[str, Any]:
        return {"person_id": self.person_id, "account_id": self.account_id, "masked_id": self.masked_id,
                "name": self.name, "school_code": self.school_code, "role": self.role}


class NoPersonalData(IdpError):
    """Nobody with this name, number and birthday at that school (R-C6); ``advice`` says what to ask."""

    status = 404
    code = "no_personal_data"
    message = _l("We could not find your personal data at this school.")


# Where each kind of school's data comes from (R-S): the advice names it.
def data_source(level: str, ownership: str | None, role: str) -> Any:
    if role != "學生":
        return _l("the national public educator database (webHR), or for private and national schools the "
                  "proxy platform your school uploads to")
    if level in ("高中", "高職"):
        return _l("the K-12 Education Administration's senior-high student registry (國教署全國高級中等學校"
                  "學生基本資料庫)")
    if ownership in ("私立", "國立") or level in ("實驗教育", "特殊教育"):
        return _l("the proxy platform your school uploads its rosters to")
    return _l("your county's student-affairs system (學務系統)")


def identify(*, school_code: str, role: str | None, name: str, national_id: NationalId, birthday: dt.date,
             ip: str | None) -> Identified:
    """The person with this personal data who is (currently) at this school, in this role (any role
    when None); else ``NoPersonalData``. Attempts that find nobody count against ``recover.ip`` and
    ``recover.id`` (checked first: a limited caller gets ``RateLimited``)."""
    from idp.identity import protection

    bi = protection.blind_index(national_id)
    by_ip, by_id = ratelimit.recover_ip(), ratelimit.recover_id()
    ratelimit.check(by_ip, ip or "unknown")
    ratelimit.check(by_id, bi)
    person = identity.find_by_personal_data(name.strip(), national_id, birthday)
    at_school = person is not None and any(
        a.school_code == school_code and a.status == "active" and (role is None or a.role == role)
        for a in person.affiliations)
    if not at_school:
        ratelimit.count_failure(by_ip, ip or "unknown")
        ratelimit.count_failure(by_id, bi)
        raise NoPersonalData()
    assert person is not None
    return Identified(person.id, person.account_id, national_id.masked, person.name, school_code,
                      role or _main_role(person, school_code))


def _main_role(person: Any, school_code: str) -> str:
    roles = [a.role for a in person.affiliations if a.school_code == school_code and a.status == "active"]
    return min(roles, key=lambda r: ROLES.index(r) if r in ROLES else 9)


def advice_for(school_code: str, role: str) -> dict[str, Any]:
    """What the "no personal data" page tells the person (R-C6): which database, who to ask."""
    from idp.schools import services as schools

    school = schools.get_school(school_code)
    level = school.level if school else ""
    return {"database": data_source(level, school.ownership if school else None, role),
            "high_school": level in ("高中", "高職") and role == "學生",
            "contact": {"phone": settings().support_phone, "email": settings().support_email}}
