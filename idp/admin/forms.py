"""Operator console forms (CSRF via Flask-WTF). The rules are in the services (``oidc.registration``,
``identity.services``); forms only shape input."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from idp.oidc import registration as services


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


class ClientForm(FlaskForm):
    """One app's registration. Multi-value URIs are one per line."""

    client_id = StringField(_l("Client ID (leave empty for a random one)"), validators=[Optional(), Length(max=64)])
    name = StringField(_l("App name shown on the consent page"), validators=[DataRequired(), Length(max=200)])
    redirect_uris = TextAreaField(_l("Redirect URIs, one per line (exact match; https unless loopback)"))
    post_logout_redirect_uris = TextAreaField(_l("Post-logout redirect URIs, one per line"))
    backchannel_logout_uri = StringField(_l("Back-channel logout URI"), validators=[Optional(), Length(max=500)])
    grant_types = MultiCheckboxField(_l("Grant types"), choices=[SelectChoice(g) for g in services.GRANT_TYPES])
    scope = MultiCheckboxField(_l("Scopes the app may ask for"))
    token_endpoint_auth_method = SelectField(_l("Token endpoint authentication"), choices=[
        SelectChoice("client_secret_basic", _l("client_secret_basic (secret in the Authorization header)")),
        SelectChoice("client_secret_post", _l("client_secret_post (secret in the form body)")),
        SelectChoice("private_key_jwt", _l("private_key_jwt (the app signs with its own key)")),
        SelectChoice("none", _l("none (public app in a browser or on a device; PKCE required)")),
    ])
    jwks = TextAreaField(_l("The app's public key set (JSON), for private_key_jwt"))
    jwks_uri = StringField(_l("Or the URL of its key set"), validators=[Optional(), Length(max=500)])
    id_token_signed_response_alg = SelectField(_l("ID token algorithm"),
                                               choices=[SelectChoice(a) for a in services.ID_TOKEN_ALGS])
    subject_type = SelectField(_l("Subject identifier"), choices=[
        SelectChoice("pairwise", _l("pairwise: a different identifier for each sector (recommended)")),
        SelectChoice("public", _l("public: the same identifier for every app")),
    ])
    sector_identifier = StringField(_l("Sector identifier URI (apps sharing it see the same pairwise identifier)"),
                                    validators=[Optional(), Length(max=255)])
    subject_format = SelectField(_l("Subject identifier format"), default="", choices=[
        SelectChoice("", _l("automatic: a UUID for an app moving over from the ministry's service, "
                            "otherwise opaque")),
        SelectChoice("opaque", _l("opaque (recommended for new apps)")),
        SelectChoice("uuid", _l("UUID (for apps that store the identifier in a UUID column)")),
    ])
    ministry_compatible = BooleanField(_l("An app moving over from the ministry's sign-in service (oidc.tanet.edu.tw): "
                                          "its scopes, UUID identifiers and education data without asking"))
    require_real_name = BooleanField(_l("Only real-name cloud accounts may sign in"))
    skip_consent = BooleanField(_l("Trusted first-party app: skip the consent page"))
    submit = SubmitField(_l("Save"))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from idp.oidc import claims

        self.scope.choices = [SelectChoice(s) for s in claims.scopes_supported()]

    def fill(self, registration: dict[str, Any]) -> None:
        """Show an existing registration in the form (a GET of the edit page)."""
        for key, value in registration.items():
            field = getattr(self, key, None)
            if field is None:
                continue
            if key in ("redirect_uris", "post_logout_redirect_uris"):
                field.data = "\n".join(value or [])
            elif key == "scope":
                field.data = (value or "").split()
            elif key == "jwks":
                import json

                field.data = json.dumps(value, indent=2) if value else ""
            else:
                field.data = value

    def registration(self) -> dict[str, Any]:
        """The typed values in the services' shape."""
        return {
            "name": self.name.data,
            "redirect_uris": _lines(self.redirect_uris.data),
            "post_logout_redirect_uris": _lines(self.post_logout_redirect_uris.data),
            "backchannel_logout_uri": self.backchannel_logout_uri.data or None,
            "grant_types": list(self.grant_types.data or []),
            "scope": " ".join(self.scope.data or []),
            "token_endpoint_auth_method": self.token_endpoint_auth_method.data,
            "jwks": self.jwks.data or None,
            "jwks_uri": self.jwks_uri.data or None,
            "id_token_signed_response_alg": self.id_token_signed_response_alg.data,
            "subject_type": self.subject_type.data,
            "sector_identifier": self.sector_identifier.data or None,
            "require_real_name": self.require_real_name.data,
            "skip_consent": self.skip_consent.data,
            "ministry_compatible": self.ministry_compatible.data,
            "subject_format": self.subject_format.data or "",
        }


class ConfirmForm(FlaskForm):
    """A button that changes something (rotate a secret, delete an app, rotate keys)."""

    submit = SubmitField(_l("Confirm"))


class KeyRotateForm(FlaskForm):
    alg = SelectField(_l("Algorithm"), choices=[SelectChoice("", _l("Every algorithm")), SelectChoice("RS256"),
                                    SelectChoice("ES256")],
                      validators=[Optional()])
    submit = SubmitField(_l("Add a new signing key"))


class KeyRetireForm(FlaskForm):
    kid = HiddenField(validators=[DataRequired()])
    submit = SubmitField(_l("Retire"))


class PersonLookupForm(FlaskForm):
    """The national ID is typed into a password-type field: it is not shown on screen, not kept
    by the browser's form history, and never put back into the page."""

    national_id = PasswordField(_l("National ID or residence permit number"),
                                validators=[DataRequired(), Length(max=20)],
                                render_kw={"autocomplete": "off", "spellcheck": "false",
                                           "autocapitalize": "characters"})
    submit = SubmitField(_l("Find"))


class ResolveConflictForm(FlaskForm):
    chosen = RadioField(_l("The correct value"), validators=[DataRequired()], choices=[])
    note = TextAreaField(_l("How you confirmed it"), validators=[DataRequired(), Length(max=2000)])
    submit = SubmitField(_l("Resolve"))
