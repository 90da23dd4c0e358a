"""The member sign-up's forms (R-A1): the e-mail address, the code sent to it, the account itself.
Rules live in ``accounts.services`` (account name, password) and ``security.otp`` (address, code)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField
from wtforms.validators import DataRequired, EqualTo, Length, Optional


class EmailForm(FlaskForm):
    email = EmailField(_l("E-mail address"), validators=[DataRequired(_l("Please enter an e-mail address.")),
                                                         Length(max=254)],
                       render_kw={"autocomplete": "email", "inputmode": "email", "spellcheck": "false",
                                  "maxlength": "254"})
    submit = SubmitField(_l("Send me a code"))


class CodeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(_l("Please enter the code."))],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": "12"})
    submit = SubmitField(_l("Confirm"))


class AccountForm(FlaskForm):
    username = StringField(_l("Account name"), validators=[DataRequired(_l("Please choose an account name."))],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false",
                                      "maxlength": "30"})
    name = StringField(_l("Your name (optional)"), validators=[Optional(), Length(max=100)],
                       render_kw={"autocomplete": "name", "maxlength": "100"})
    password = PasswordField(_l("Password"), validators=[DataRequired(_l("Please choose a password."))],
                             render_kw={"autocomplete": "new-password", "maxlength": "256"})
    password_again = PasswordField(_l("Password again"), validators=[
        DataRequired(_l("Please type the password again.")),
        EqualTo("password", _l("The two passwords are not the same."))],
        render_kw={"autocomplete": "new-password", "maxlength": "256"})
    submit = SubmitField(_l("Create my account"))
