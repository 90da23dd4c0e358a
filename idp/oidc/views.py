"""HTTP endpoints of the provider (R-O1, R-L4) and the ministry-compatible aliases (issue 2 item 7).

Views are thin: Authlib validates, ``services`` keeps the rules. The authorization endpoint is
the one place with a decision tree (client → session → prompt/max_age → real name → consent →
code); every step either renders a page for the person or redirects to the client's
registered redirect URI with ``iss`` (RFC 9207). An unknown client or unregistered redirect
URI gets an error page before any login page and is never redirected to.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import Blueprint, Response, current_app, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError, validate_csrf
from wtforms import ValidationError

from idp.db import commit
from idp.errors import IdpError
from idp.extensions import csrf
from idp.identity import assurance
from idp.oidc import claims, discovery, services, subjects
from idp.oidc.forms import ConsentForm, LogoutForm, RevokeAppForm
from idp.oidc.logout import hint_is_for
from idp.oidc.server import oauth
from idp.security import audit
from idp.security.headers import allow_form_target

bp = Blueprint("oidc", __name__)

REAUTH_KEY = "oidc_reauth"


def _sessions() -> Any:
    from idp.login import sessions

    return sessions


def _json(body: bytes | str, max_age: int | None = None) -> Response:
    resp = Response(body, mimetype="application/json")
    resp.headers["Cache-Control"] = f"public, max-age={max_age}" if max_age else "no-store"
    resp.headers["Access-Control-Allow-Origin"] = "*"
    return resp


# -- discovery and keys ------------------------------------------------------------------------
# GET and HEAD are answered before Flask by ``published.PublishedDocuments`` (same bytes and
# headers); these routes name the URLs and answer any other method with 405.
@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    return _json(discovery.document_json(), max_age=300)


@bp.get("/oauth/jwks")
@bp.get("/oidc/v1/jwksets", endpoint="ministry_jwks")
def jwks() -> Response:
    return _json(current_app.extensions["idp.keys"].jwks_json(), max_age=60)


# -- authorization endpoint --------------------------------------------------------------------
class InvalidAuthorizationRequest(IdpError):
    status = 400
    code = "invalid_request"
    message = _l("This sign-in request is not valid. Please go back to the app and try again.")


class RealNameRequired(IdpError):
    status = 403
    code = "real_name_required"
    message = _l("This app needs a real-name education cloud account.")


def _redirect_error(error: OAuth2Error) -> Response:
    """An authorization error at the client's (already validated) redirect URI, with ``iss``."""
    if error.state is None:
        error.state = request.args.get("state")
    return oauth().add_issuer(oauth().handle_error_response(None, error))


def _request_key() -> str:
    args = request.args
    raw = "|".join(args.get(k, "") for k in ("client_id", "redirect_uri", "state", "nonce", "code_challenge"))
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _reauthenticated(sso: Any) -> bool:
    """True once the person signed in again after this request asked for it (prompt=login, max_age)."""
    marker = session.get(REAUTH_KEY) or {}
    return marker.get("k") == _request_key() and sso.auth_time >= marker.get("t", 0)


def _needs_login(sso: Any, account: Any, prompts: set[str], max_age: int | None) -> bool:
    """Show the login page? ``select_account`` asks too: the person may sign in as someone else.
    ``max_age=0`` means "sign in now" (the same as ``prompt=login``), even within the second."""
    if sso is None or account is None:
        return True
    fresh = _reauthenticated(sso)
    if prompts & {"login", "select_account"} and not fresh:
        return True
    if max_age is None or fresh:
        return False
    return max_age == 0 or int(time.time()) - int(sso.auth_time) > max_age


def _wants_real_name(client: Any) -> bool:
    return bool(client.require_real_name) or assurance.ACR_CLOUD in request.args.get("acr_values", "").split()


@bp.route("/oauth/authorize", methods=["GET", "POST"])
@bp.get("/oidc/v1/azp", endpoint="ministry_authorize")
def authorize() -> Any:
    server = oauth()
    client = services.get_client(request.args.get("client_id"))
    if client is None:
        raise InvalidAuthorizationRequest(_l("This app is not registered with the education sign-in service."),
                                          code="invalid_client")
    redirect_uri = request.args.get("redirect_uri")
    if not redirect_uri:
        raise InvalidAuthorizationRequest(
            _l("This app's sign-in request does not say where to return to (its redirect_uri is missing). "
               "Please tell the app's provider."), code="missing_redirect_uri")
    if not client.check_redirect_uri(redirect_uri) or len(request.args.getlist("redirect_uri")) > 1:
        raise InvalidAuthorizationRequest(
            _l("This app asked to return to an address it has not registered. "
               "Please tell the app's provider."), code="invalid_redirect_uri")

    # Request objects (OIDC Core §6) are not supported: say so rather than ignore what they carry.
    if "request" in request.args:
        return _redirect_error(RequestNotSupportedError(redirect_uri=redirect_uri))
    if "request_uri" in request.args:
        return _redirect_error(RequestURINotSupportedError(redirect_uri=redirect_uri))
    prompts = set(request.args.get("prompt", "").split())
    if prompts - set(discovery.PROMPTS_SUPPORTED):
        supported = " ".join(discovery.PROMPTS_SUPPORTED)
        return _redirect_error(InvalidRequestError(f"Unsupported 'prompt' value; supported: {supported}.",
                                                   redirect_uri=redirect_uri))

    sessions = _sessions()
    sso = sessions.current_session()
    account = services.get_account(sso.account_id) if sso else None
    if account is not None and not account.is_active:
        account = None
    try:
        grant = server.get_consent_grant(end_user=account)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _redirect_error(error)
        raise InvalidAuthorizationRequest(code=error.error) from error

    try:
        max_age = int(request.args["max_age"]) if request.args.get("max_age") else None
        if max_age is not None and max_age < 0:
            raise ValueError
    except ValueError:
        return _redirect_error(InvalidRequestError("Invalid 'max_age'.", redirect_uri=grant.redirect_uri))
    if _needs_login(sso, account, prompts, max_age):
        if "none" in prompts:
            return _redirect_error(LoginRequiredError(redirect_uri=grant.redirect_uri))
        session[REAUTH_KEY] = {"k": _request_key(), "t": int(time.time())}
        next_url = url_for("oidc.authorize", **request.args.to_dict(flat=True))
        switching = "select_account" in prompts
        return redirect(sessions.login_url(next_url, force=account is not None, switch=switching,
                                           login_hint=request.args.get("login_hint")))

    if _wants_real_name(client) and not assurance.is_real_name(sso.acr):  # decided at sign-in (R-A3)
        return render_template("oidc/real_name_required.html", client=client,
                               switch_url=_select_account_url()), 403

    scope = grant.request.scope
    form = ConsentForm()
    asked_consent = "consent" in prompts
    if asked_consent or services.needs_consent(account.id, client, scope):
        if "none" in prompts:
            return _redirect_error(ConsentRequiredError(redirect_uri=grant.redirect_uri))
        if request.method != "POST" or not form.validate_on_submit():
            allow_form_target(grant.redirect_uri)  # "allow" ends in a redirect to the app
            return render_template("oidc/consent.html", client=client, scopes=claims.describe(scope),
                                   account=account, form=form,
                                   action=url_for("oidc.authorize", **request.args.to_dict(flat=True)),
                                   switch_action=url_for("oidc.switch_account", **request.args.to_dict(flat=True)))
        if not form.allow.data:
            return server.create_authorization_response(grant=grant, grant_user=None)
        services.grant_consent(account, client.client_id, scope)
        commit()

    grant.request.sso = sso
    grant.request.sub = subjects.subject_for(client, account)
    grant.request.acr = sso.acr
    response = server.create_authorization_response(grant=grant, grant_user=account)
    if response.status_code == 302 and "code" in parse_qs(urlsplit(response.location or "").query):
        sessions.add_client(sso.sid, client.client_id)
    session.pop(REAUTH_KEY, None)
    return response


def _select_account_url() -> str:
    """This authorization request again, asking to choose the account (``prompt=select_account``):
    the login page with an empty account field, then back here. The app's ``login_hint`` is dropped:
    it named the person who is switching away."""
    args = {k: v for k, v in request.args.to_dict(flat=True).items() if k not in ("prompt", "login_hint")}
    prompts = [p for p in request.args.get("prompt", "").split() if p not in ("none", "select_account")]
    return url_for("oidc.authorize", **args, prompt=" ".join([*prompts, "select_account"]))


@bp.post("/oauth/authorize/switch-account")
def switch_account() -> Any:
    """不是您？切換帳號 (the consent page): sign out whoever is signed in on this browser, then make the
    same authorization request choose an account. A POST with the form's CSRF token, so no other
    site can sign a person out; it only ever redirects to this provider's own authorization
    endpoint, which checks the request again from the start."""
    sessions = _sessions()
    sso = sessions.current_session()
    if sso is not None:
        account = sessions.current_account()
        sessions.end_session(sso.sid)
        audit.record(audit.LOGOUT, actor=account.username if account else None, reason="switch_account")
        commit()
    return redirect(_select_account_url())


# -- token, userinfo, revocation, introspection (JSON APIs: no CSRF, no caching) -------------
@bp.post("/oauth/token")
@bp.post("/oidc/v1/token", endpoint="ministry_token")
@csrf.exempt
def token() -> Response:
    response = oauth().create_token_response()
    commit()  # the tokens, or what a failure recorded (a replay's revocation, an audit row)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@bp.get("/oidc/v1/userinfo", endpoint="ministry_userinfo")
@bp.get("/moeresource/api/v1/oidc/profile", endpoint="ministry_profile")
@csrf.exempt
def userinfo() -> Response:
    response = oauth().create_endpoint_response("userinfo")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/moeresource/api/v1/oidc/eduinfo", endpoint="ministry_eduinfo")
@csrf.exempt
def eduinfo() -> Response:
    """The ministry's education resource (Bearer, scope ``eduinfo``): ``sub`` plus school, titles and
    classes, the same object as the ``eduinfo`` claims in userinfo."""
    from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest

    protector = current_app.extensions["idp.resource_protector"]
    try:
        token = protector.validate_request(scopes=["eduinfo"], request=FlaskJsonRequest(request))
    except OAuth2Error as error:
        resp = _json(json.dumps(dict(error.get_body())))
        resp.status_code = error.status_code
        for name, value in error.get_headers():
            resp.headers[name] = value
        return resp
    account = token.get_user()
    if account is None:  # a client_credentials token speaks for an app, not a person
        resp = _json(json.dumps({"error": "invalid_token", "error_description": "The token is not a person's."}))
        resp.status_code = 401
        resp.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return resp
    client = token.get_client()
    body = {"sub": subjects.subject_for(client, account), "schoolid": "", "titles": [], **claims.eduinfo(account)}
    return _json(json.dumps(body, ensure_ascii=False))


@bp.post("/oauth/revoke")
@csrf.exempt
def revoke() -> Response:
    response = oauth().create_endpoint_response("revocation")
    commit()
    return response


@bp.post("/oauth/introspect")
@csrf.exempt
def introspect() -> Response:
    response = oauth().create_endpoint_response("introspection")
    commit()  # failed client authentications are audited
    response.headers["Cache-Control"] = "no-store"
    return response


# -- logout ------------------------------------------------------------------------------------
@bp.route("/oauth/logout", methods=["GET", "POST"])
@csrf.exempt  # a relying party may POST id_token_hint; the confirmation form is checked below
def end_session() -> Any:
    server = oauth()
    try:
        req = server.validate_endpoint_request("end_session")
    except OAuth2Error as error:
        raise InvalidAuthorizationRequest(
            _l("This sign-out request is not valid. You have not been signed out."), code=error.error) from error
    sso = _sessions().current_session()
    if sso is not None and not hint_is_for(sso, req):
        # No hint, or a hint from another session (anyone may hold an old ID token): ask first.
        form = LogoutForm()
        if req.redirect_uri:
            allow_form_target(req.redirect_uri)
        if request.method != "POST":
            return render_template("oidc/logout_confirm.html", form=form, client=req.client,
                                   action=request.full_path)
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from exc
    response = server.create_endpoint_response("end_session", req)
    commit()  # the ended session's tokens are revoked
    return response or render_template("oidc/logged_out.html", client=req.client)


# -- the person's authorised apps --------------------------------------------------------------
@bp.route("/account/apps", methods=["GET", "POST"])
def apps() -> Any:
    sessions = _sessions()
    sso = sessions.current_session()
    if sso is None:
        return redirect(sessions.login_url(url_for("oidc.apps")))
    form = RevokeAppForm()
    account = sessions.current_account()
    if form.validate_on_submit() and account is not None:
        services.revoke_consent(account, form.client_id.data)
        commit()
        return redirect(url_for("oidc.apps"))
    return render_template("oidc/apps.html", consents=services.list_consents(sso.account_id),
                           describe=claims.describe, form=form)
