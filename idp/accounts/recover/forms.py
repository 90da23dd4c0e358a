"""The recover flows' own forms (R-C1, R-C4, R-C5). The school picker and the personal-data form are
shared with apply (``idp.accounts.identify``); the rules live in ``services``."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import PasswordField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length

from idp.accounts.identify import PersonalDataForm


class ConfirmForm(FlaskForm):
    """A step that only asks "is this right?" (the CSRF token is its only field)."""


class _IdAndBirthday(PersonalDataForm):
    """忘記帳號 asks only the ID number and the birthday (the seed's step 3), no name."""

    name = None

    def validate_national_id(self, field: Any) -> None:
        try:
            super().validate_national_id(field)
        finally:
            field.data = ""  # a mistyped number is still almost someone's number: never echoed back


def forgot_account_form(*args: Any, **kwargs: Any) -> FlaskForm:
    """ID number, birthday and the captcha."""
    from idp.security import captcha

    class WithCaptcha(_IdAndBirthday):
        captcha_code = captcha.CaptchaField(_l("Security code"))

    return WithCaptcha(*args, **kwargs)


def code_request_form(*args: Any, **kwargs: Any) -> FlaskForm:
    """The account name, where the code should go, and the captcha."""
    from idp.security import captcha

    class CodeRequestForm(FlaskForm):
        username = StringField(_l("Account name"), validators=[DataRequired(_l("Please enter your account name.")),
                                                               Length(max=64)],
                               render_kw={"autocomplete": "username", "autocapitalize": "none",
                                          "spellcheck": "false", "maxlength": "64"})
        channel = RadioField(_l("Send the code to my"), default="email",
                             choices=[SelectChoice("email", _l("backup e-mail address")),
                                      SelectChoice("sms", _l("mobile number (text message)"))],
                             validators=[DataRequired(_l("Please choose e-mail or text message."))])
        captcha_code = captcha.CaptchaField(_l("Security code"))

    return CodeRequestForm(*args, **kwargs)


class CodeForm(FlaskForm):
    """The 6 digits from the message."""

    code = StringField(_l("Code"), validators=[DataRequired(_l("Please type the code from the message."))],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": "12",
                                  "spellcheck": "false"})


class NewPasswordForm(FlaskForm):
    """The new password, twice (the seed: 輸入新密碼並確認)."""

    password = PasswordField(_l("New password"), validators=[DataRequired(_l("Please choose a password."))],
                             render_kw={"autocomplete": "new-password", "maxlength": "256"})
    password_again = PasswordField(_l("New password again"), validators=[
        DataRequired(_l("Please type the password again.")),
        EqualTo("password", _l("The two passwords are not the same."))],
        render_kw={"autocomplete": "new-password", "maxlength": "256"})
