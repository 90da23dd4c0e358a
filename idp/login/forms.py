"""Forms of the hosted login page (R-L1, issue 10 item 13)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, Length

from idp.security.captcha import CaptchaField


class LoginForm(FlaskForm):
    username = StringField(_l("Account"), validators=[DataRequired(_l("Please enter your account.")),
                                                       Length(max=64)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"})
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Please enter your password.")),
                                                          Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    next = HiddenField()
    force = HiddenField()
    submit = SubmitField(_l("Sign in"))


class CaptchaLoginForm(LoginForm):
    """The login form once the account typed is past its free failures: a captcha with the password.
    A separate class, not an optional field: a form that asks for the captcha always checks it."""

    captcha = CaptchaField()


def login_form(with_captcha: bool, **kwargs: object) -> LoginForm:
    return (CaptchaLoginForm if with_captcha else LoginForm)(**kwargs)


class LogoutForm(FlaskForm):
    submit = SubmitField(_l("Sign out"))
