"""The apply wizard's own forms (R-C2). The school picker and the personal-data form are shared with
the other flows (``idp.accounts.identify``); rules live in ``services`` and ``accounts.services``."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from idp.accounts.identify import ROLES, role_label

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$")
# A Taiwanese mobile number as people write it: 0912345678, 0912-345-678, +886 912 345 678.
MOBILE_RE = re.compile(r"^(?:\+?886|0)(9\d{8})$")


def normalise_mobile(value: str) -> str | None:
    """``09xxxxxxxx`` for a Taiwanese mobile number written any usual way; None if it is not one."""
    digits = re.sub(r"[\s\-().]", "", value or "")
    match = MOBILE_RE.fullmatch(digits)
    return f"0{match.group(1)}" if match else None


class RoleForm(FlaskForm):
    """Step 3 of the seed: 身份別 (學生 / 教師 / 職員)."""

    role = RadioField(_l("I am a"), choices=[SelectChoice(r, role_label(r)) for r in ROLES],
                      validators=[DataRequired(_l("Please choose student, teacher or staff."))])


class ConfirmForm(FlaskForm):
    """A step that only asks "is this right?" (the CSRF token is its only field)."""


class AccountForm(FlaskForm):
    """Step 8: the account name, the password (twice), the backup e-mail and mobile."""

    username = StringField(_l("Account name"), validators=[DataRequired(_l("Please choose an account name."))],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false",
                                      "maxlength": "30"})
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Please choose a password."))],
                             render_kw={"autocomplete": "new-password", "maxlength": "256"})
    password_again = PasswordField(_l("Password again"), validators=[
        DataRequired(_l("Please type the password again.")),
        EqualTo("password", _l("The two passwords are not the same."))],
        render_kw={"autocomplete": "new-password", "maxlength": "256"})
    email = StringField(_l("Backup e-mail (optional)"), validators=[Optional(), Length(max=254)],
                        render_kw={"autocomplete": "email", "type": "email", "inputmode": "email",
                                   "spellcheck": "false", "maxlength": "254"})
    mobile = StringField(_l("Mobile number (optional)"), validators=[Optional(), Length(max=20)],
                         render_kw={"autocomplete": "tel", "type": "tel", "inputmode": "tel", "maxlength": "20"})

    def validate_email(self, field: Any) -> None:
        field.data = (field.data or "").strip()
        if field.data and not EMAIL_RE.fullmatch(field.data):
            raise ValidationError(_l("Please enter an e-mail address such as name@example.com."))

    def validate_mobile(self, field: Any) -> None:
        if not (field.data or "").strip():
            field.data = ""
            return
        number = normalise_mobile(field.data)
        if number is None:
            raise ValidationError(_l("Please enter a mobile number such as 0912-345-678."))
        field.data = number
