"""HTTP endpoints of the provider (R-O1, R-L4) and the ministry-compatible paths (issue 2 item 7, R-O4).

Views are thin: Authlib validates, ``services`` keeps the rules. The authorization endpoint is
the one place with a decision tree (client → session → prompt/max_age → real name → consent →
code); every step either renders a page for the person or redirects to the client's
registered redirect URI with ``iss`` (RFC 9207). An unknown client or unregistered redirect
URI gets an error page before any login page and is never redirected to.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import time
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oidc.core.errors import (
    ConsentRequiredError,
    LoginRequiredError,
    RequestNotSupportedError,
    RequestURINotSupportedError,
)
from flask import Blueprint, Response, current_app, redirect, render_template, request, session, url_for
from flask.globals import request_ctx
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
from idp.serving import BODY_KEY

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
    return _authorize()


def _authorize(continuing: bool = False) -> Any:
    """The decision tree. ``continuing``: called by ``continue_after_sign_in`` within the login
    POST; None wherever the request would show a page or go to the login page, for the browser
    to come back for those as before."""
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
    known = sessions.account_in_hand() if sso else None  # a sign-in within this request read it
    if known is not None and known.id == sso.account_id:
        account, granted = known, services.granted_scope(known.id, client)
    else:
        account, granted = services.account_and_consent(sso.account_id, client) if sso else (None, None)
    if account is not None and not account.is_active:
        account = None
    try:
        grant = server.get_consent_grant(end_user=account)
    except OAuth2Error as error:
        if error.redirect_uri:
            return _redirect_error(error)
        if continuing:
            return None
        raise InvalidAuthorizationRequest(code=error.error) from error

    try:
        max_age = int(request.args["max_age"]) if request.args.get("max_age") else None
        if max_age is not None and max_age < 0:
            raise ValueError
    except ValueError:
        return _redirect_error(InvalidRequestError("Invalid 'max_age'.", redirect_uri=grant.redirect_uri))
    if _needs_login(sso, account, prompts, max_age):
        if continuing:
            return None
        if "none" in prompts:
            return _redirect_error(LoginRequiredError(redirect_uri=grant.redirect_uri))
        if prompts & {"login", "select_account"} or max_age is not None:
            # Only a request that asks for a fresh sign-in needs to know, on its way back, that it
            # got one: others leave the form session alone (no cookie to sign and send).
            session[REAUTH_KEY] = {"k": _request_key(), "t": int(time.time())}
        next_url = url_for("oidc.authorize", **request.args.to_dict(flat=True))
        if account is None and not prompts and max_age is None and not request.args.get("login_hint"):
            page = current_app.extensions["idp.login_page"](next_url)  # answered here: one redirect fewer
            if page is not None:
                return page
        switching = "select_account" in prompts
        return redirect(sessions.login_url(next_url, force=account is not None, switch=switching,
                                           login_hint=request.args.get("login_hint")))

    if _wants_real_name(client) and not assurance.is_real_name(sso.acr):  # decided at sign-in (R-A3)
        if continuing:
            return None
        return render_template("oidc/real_name_required.html", client=client,
                               switch_url=_select_account_url()), 403

    scope = grant.request.scope
    asked_consent = "consent" in prompts
    if asked_consent or services.needs_consent(client, scope, granted):
        if continuing:
            return None
        form = ConsentForm()  # only here: a remembered consent needs no form (nor its CSRF token)
        if "none" in prompts:
            return _redirect_error(ConsentRequiredError(redirect_uri=grant.redirect_uri))
        if request.method != "POST" or not form.validate_on_submit():
            allow_form_target(grant.redirect_uri)  # "allow" ends in a redirect to the app
            return render_template("oidc/consent.html", client=client, scopes=claims.describe(scope),
                                   account=account, form=form,
                                   action=url_for("oidc.authorize", **request.args.to_dict(flat=True)),
                                   switch_action=url_for("oidc.switch_account", **request.args.to_dict(flat=True)))
        if not form.allow.data:
            return server.create_authorization_response(grant.request, grant=grant, grant_user=None)
        services.grant_consent(account, client.client_id, scope)
        commit()

    grant.request.sso = sso
    grant.request.sub = subjects.subject_for(client, account)
    grant.request.acr = sso.acr
    # The request Authlib already wrapped, not a second wrapper; the code is saved with sessions.add_client.
    response = server.create_authorization_response(grant.request, grant=grant, grant_user=account)
    session.pop(REAUTH_KEY, None)
    return response


def continue_after_sign_in(next_url: str) -> Response | None:
    """The login POST's answer when the sign-in was for an authorization request (``next`` is one):
    that request answered now, in the same request, when it ends at the app (a code, or an error
    for the app): a redirect there, so the browser goes from the login form straight to the app.
    None when it would show a page (consent, a real-name requirement) or ask for a login again:
    then the browser is sent to ``next`` as before. One request, one round trip fewer per sign-in
    for the person, and the request's own work (the adapter, the hooks, the session's cookie and
    its store read) not done twice (issue 11).

    The authorization request is run as it would be on its own (the same view, the same checks)
    with this request's context: the same form session, the new SSO session (``sessions.carry``)
    and a request object of its own for ``next``'s GET."""
    parts = urlsplit(next_url)
    root = request.script_root
    path = parts.path[len(root):] if root and parts.path.startswith(root) else parts.path
    if path not in services.AUTHORIZE_PATHS:
        return None
    outer = request._get_current_object()  # type: ignore[attr-defined]
    environ = {**outer.environ, "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": parts.query,
               "CONTENT_LENGTH": "0", "wsgi.input": io.BytesIO()}
    environ.pop("CONTENT_TYPE", None)
    environ.pop(BODY_KEY, None)  # the login form's body (its password) is not this request's
    inner = current_app.request_class(environ)
    _sessions().carry(outer, inner)
    context = request_ctx._get_current_object()  # type: ignore[attr-defined]
    context.request = inner
    try:
        return _authorize(continuing=True)
    except InvalidAuthorizationRequest:  # the browser gets the error page from the request itself
        return None
    finally:
        context.request = outer


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
    """Called by ``token_endpoint.TokenEndpoint`` for every POST, without Flask's dispatch and hooks
    (the routes stay for the other methods' 405 and for ``url_for``)."""
    response = oauth().create_token_response()
    commit()  # the tokens, or what a failure recorded (a replay's revocation, an audit row)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.route("/oauth/userinfo", methods=["GET", "POST"])
@bp.get("/oidc/v1/userinfo", endpoint="ministry_userinfo")
@bp.get("/moeresource/api/v1/oidc/userinfo", endpoint="ministry_resource_userinfo")
@csrf.exempt
def userinfo() -> Response:
    response = oauth().create_endpoint_response("userinfo")
    response.headers["Cache-Control"] = "no-store"
    return response


# -- the ministry's protected resources (R-O4): Bearer, one JSON object each -----------------------
def _person_token(scope: str | None) -> tuple[Any, Any] | Response:
    """The presented access token and its person, or the error response: ``401`` without a valid
    token (and for a client-credentials token, which speaks for an app, not a person), ``403
    insufficient_scope`` without ``scope``."""
    from authlib.integrations.flask_oauth2.requests import FlaskJsonRequest

    protector = current_app.extensions["idp.resource_protector"]
    try:
        token = protector.validate_request(scopes=[scope] if scope else None, request=FlaskJsonRequest(request))
    except OAuth2Error as error:
        resp = _json(json.dumps(dict(error.get_body())))
        resp.status_code = error.status_code
        for name, value in error.get_headers():
            resp.headers[name] = value
        return resp
    account = token.get_user()
    if account is None:
        resp = _json(json.dumps({"error": "invalid_token", "error_description": "The token is not a person's."}))
        resp.status_code = 401
        resp.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return resp
    return token, account


def _wants_gzip(client: Any) -> bool:
    """Compress when the request accepts gzip. A request without ``Accept-Encoding`` accepts any coding
    (RFC 9110 §12.5.3): the ministry answers those with gzip, and a school-site module reads its eduinfo
    with ``gzdecode()`` without sending the header, so a ministry-compatible app gets gzip then too; any
    other app gets plain JSON unless it asks."""
    if "Accept-Encoding" not in request.headers:
        return bool(getattr(client, "ministry_compatible", False))
    return request.accept_encodings["gzip"] > 0


@bp.get("/moeresource/api/v1/oidc/profile", endpoint="ministry_profile")
@csrf.exempt
def ministry_profile() -> Response:
    """The ministry's profile resource: ``{"fullname", "guid", "titles": [{"schoolid", "title": [...]}]}``,
    each value filled when its scope (profile, guid, eduinfo) was granted."""
    found = _person_token(None)
    if isinstance(found, Response):
        return found
    token, account = found
    return _json(json.dumps(claims.ministry_profile(account, token.scope, token.get_client()), ensure_ascii=False))


@bp.get("/moeresource/api/v1/oidc/eduinfo", endpoint="ministry_eduinfo")
@bp.get("/moeresource/api/v2/oidc/eduinfo", endpoint="ministry_eduinfo_v2")
@bp.get("/cncresource/api/v1/eduinfo", endpoint="county_eduinfo")
@csrf.exempt
def eduinfo() -> Response:
    """The ministry's education resource (Bearer, scope ``eduinfo``): ``sub`` plus school, titles and
    classes, the same object as the ``eduinfo`` claims in userinfo; ``classinfo`` is always a list.
    Gzip-compressed when the request accepts it (``_wants_gzip``)."""
    found = _person_token("eduinfo")
    if isinstance(found, Response):
        return found
    token, account = found
    client = token.get_client()
    body = {"sub": subjects.subject_for(client, account), "schoolid": "", "titles": [], "classinfo": [],
            **claims.eduinfo(account)}
    resp = _json(json.dumps(body, ensure_ascii=False))
    resp.vary.add("Accept-Encoding")
    if _wants_gzip(client):
        resp.set_data(gzip.compress(resp.get_data(), mtime=0))
        resp.headers["Content-Encoding"] = "gzip"
    return resp


@bp.get("/moeresource/api/v2/oidc/relation", endpoint="ministry_relation")
@csrf.exempt
def relation() -> Response:
    """The ministry's teaching-assignment resource (classes and subjects a teacher teaches). The trusted
    sources report no teaching assignments, so the list is empty; the resource answers so that an app
    calling it for everyone at sign-in goes on (scope ``eduinfo``)."""
    found = _person_token("eduinfo")
    if isinstance(found, Response):
        return found
    token, account = found
    return _json(json.dumps({"sub": subjects.subject_for(token.get_client(), account), "relation": []}))


@bp.get("/cncresource/api/v1/personid", endpoint="county_personid", defaults={"scope": "personid"})
@bp.get("/cncresource/api/v1/guid", endpoint="county_guid", defaults={"scope": "guid"})
@csrf.exempt
def county_resource(scope: str) -> Response:
    """The county services' one-claim resources ``personid`` and ``guid`` (Bearer, the scope of the same
    name): ``{"sub", "<scope>"}``, the keyed values of the claims table, empty for a member."""
    found = _person_token(scope)
    if isinstance(found, Response):
        return found
    token, account = found
    client = token.get_client()
    value = claims.SCOPES[scope].resolve(account, client).get(scope, "")
    return _json(json.dumps({"sub": subjects.subject_for(client, account), scope: value}))


@bp.get("/moeresource/api/v2/eduoid/all/eduid/<code>", endpoint="ministry_school")
def ministry_school(code: str) -> Response:
    """The ministry's public school directory entry for a school code, in its shape (a list, empty for an
    unknown code); ``county`` is written ``[code]name``. The same data as ``/api/schools/<code>``."""
    from idp.schools import services as schools

    school = schools.get_school(code) if len(code) <= 6 else None
    if school is None:
        return _json(b"[]", max_age=3600)
    entry = {"eduid": school.code, "year": "", "schoolname": school.name,
             "county": f"[{school.county_code}]{school.county.name}", "oid": school.oid or "", "tel": None,
             "url": None, "address": None, "coordinates": None, "schoolsystem": [school.level]}
    return _json(json.dumps([entry], ensure_ascii=False), max_age=3600)


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
# The ministry's logout paths and the parameter spellings its apps use (R-O4): ``Id_token_hint`` and
# ``post_logout_redirect_url`` (a museum's system), none at all (``/auth-logout``, a "sign out of the
# education sign-in" link). Each goes to the standard endpoint with the standard names, which applies
# every rule there (an unregistered address is never redirected to; without a hint, the person confirms).
LOGOUT_PARAMETERS = {"id_token_hint": "id_token_hint", "post_logout_redirect_uri": "post_logout_redirect_uri",
                     "post_logout_redirect_url": "post_logout_redirect_uri", "state": "state",
                     "client_id": "client_id", "ui_locales": "ui_locales", "logout_hint": "logout_hint"}


@bp.get("/oidc/v1/userlogout", endpoint="ministry_userlogout")
@bp.get("/oidc/v1/logout-to-go", endpoint="county_logout")
@bp.get("/auth-logout", endpoint="ministry_auth_logout")
def ministry_logout() -> Any:
    args: dict[str, str] = {}
    for name, value in request.args.items(multi=True):
        standard = LOGOUT_PARAMETERS.get(name.lower())
        if standard and value and standard not in args:
            args[standard] = value
    return redirect(url_for("oidc.end_session", **args))


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
