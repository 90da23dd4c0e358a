"""Forms of the help pages and of the console's support queue (R-C3). Rules are in ``services``."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, ValidationError

from idp.errors import InvalidField
from idp.security.captcha import CaptchaField
from idp.support import services

# Every county and city (縣市), in the ministry's order: the missing school's county may have no
# school in the directory at all, so the list does not come from it.
COUNTIES = ("臺北市", "新北市", "桃園市", "臺中市", "臺南市", "高雄市", "基隆市", "新竹市", "嘉義市", "新竹縣",
            "苗栗縣", "彰化縣", "南投縣", "雲林縣", "嘉義縣", "屏東縣", "宜蘭縣", "花蓮縣", "臺東縣", "澎湖縣",
            "金門縣", "連江縣")


class SchoolMissingForm(FlaskForm):
    """我找不到我的學校，回報問題: where the school is, what it is called, how to reach the reporter."""

    county = SelectField(_l("County or city"),
                         choices=[SelectChoice("", _l("Please choose")), *(SelectChoice(c, c) for c in COUNTIES)],
                         validators=[DataRequired(_l("Please choose the county or city."))])
    school_name = StringField(_l("School name"),
                              validators=[DataRequired(_l("Please enter the school's name.")), Length(max=100)],
                              render_kw={"autocomplete": "organization", "maxlength": "100"})
    email = StringField(_l("Your e-mail address"),
                        validators=[DataRequired(_l("Please enter an e-mail address so we can answer you."))],
                        render_kw={"autocomplete": "email", "type": "email", "inputmode": "email",
                                   "maxlength": "254", "spellcheck": "false"})
    message = TextAreaField(_l("Message (optional)"), validators=[Length(max=services.MAX_MESSAGE)],
                            render_kw={"rows": "5", "maxlength": str(services.MAX_MESSAGE)})
    captcha_code = CaptchaField(_l("Security code"))

    def validate_email(self, field: Any) -> None:
        try:
            field.data = services.clean_email(field.data or "")
        except InvalidField as exc:
            raise ValidationError(exc.message) from None


class AnswerForm(FlaskForm):
    """The console's answer to a report: a note, optionally mailed to the reporter."""

    note = TextAreaField(_l("Answer"), validators=[DataRequired(_l("Please write the answer.")),
                                                    Length(max=services.MAX_MESSAGE)],
                         render_kw={"rows": "6"})
    mail = BooleanField(_l("Also send this answer to the reporter by e-mail"), default=True)
    submit = SubmitField(_l("Save the answer"))


class CloseForm(FlaskForm):
    submit = SubmitField(_l("Close the report"))
