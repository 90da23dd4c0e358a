"""Forms of the consent page, the authorised-apps page and the logout confirmation (CSRF via Flask-WTF)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SubmitField
from wtforms.validators import DataRequired


class ConsentForm(FlaskForm):
    allow = SubmitField(_l("Allow"))
    deny = SubmitField(_l("Cancel"))


class RevokeAppForm(FlaskForm):
    client_id = HiddenField(validators=[DataRequired()])
    submit = SubmitField(_l("Remove access"))


class LogoutForm(FlaskForm):
    submit = SubmitField(_l("Sign out"))
