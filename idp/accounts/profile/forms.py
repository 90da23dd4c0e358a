"""Forms of the person's own pages: a new contact, the code that proves it, a new password."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, StringField, SubmitField, TelField
from wtforms.validators import DataRequired, EqualTo, Length


class EmailForm(FlaskForm):
    value = EmailField(_l("New backup e-mail"), validators=[DataRequired(_l("Please enter an e-mail address.")),
                                                            Length(max=254)],
                       render_kw={"autocomplete": "email", "spellcheck": "false"})
    submit = SubmitField(_l("Send me a code"))


class MobileForm(FlaskForm):
    value = TelField(_l("New mobile number"), validators=[DataRequired(_l("Please enter a mobile number.")),
                                                          Length(max=20)],
                     render_kw={"autocomplete": "tel", "inputmode": "tel"})
    submit = SubmitField(_l("Send me a code"))


class CodeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[DataRequired(_l("Please enter the code."))],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": "12"})
    submit = SubmitField(_l("Confirm"))


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"),
                            validators=[DataRequired(_l("Please enter your current password."))],
                            render_kw={"autocomplete": "current-password"})
    new = PasswordField(_l("New password"), validators=[DataRequired(_l("Please choose a new password."))],
                        render_kw={"autocomplete": "new-password"})
    again = PasswordField(_l("New password again"),
                          validators=[DataRequired(_l("Please type the new password again.")),
                                      EqualTo("new", _l("The two passwords are not the same."))],
                          render_kw={"autocomplete": "new-password"})
    submit = SubmitField(_l("Change the password"))


class UsernameForm(FlaskForm):
    """A new account name (R-L1: the person's own choice; e.g. instead of the one a county sign-in made up)."""

    username = StringField(_l("New account name"), validators=[DataRequired(_l("Please choose an account name.")),
                                                             Length(max=64)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"})
    submit = SubmitField(_l("Change the account name"))
