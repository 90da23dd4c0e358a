"""Hosted login, home and logout pages (R-L1, R-L3, R-L4; issue 10 items 1 and 13).

The login page is the cloud-account form, the menu a person looks for when they cannot sign in
(忘記帳號, 忘記密碼, 啟用帳號, 申請帳號, 一般會員註冊, 常見問題, 聯絡我們: pages of other packages, linked by
path) and the place the county-account area will take (issue 12). Every link keeps ``next`` (where
the sign-in was going) and a language that differs from the default, so a person who detours
through "forgot password" comes back to the app they were signing in to, in their language.

After repeated failures the form carries a captcha (``accounts.services.captcha_needed``): shown
as soon as the last answer for the typed account name said so, and checked only then.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, make_response, redirect, render_template, request, session, url_for
from flask_babel import get_locale
from flask_wtf.csrf import generate_csrf

from idp.accounts import services as accounts
from idp.db import commit
from idp.errors import IdpError, RateLimited
from idp.extensions import settings, store
from idp.i18n import lang_url
from idp.login import sessions
from idp.login.forms import LoginForm, LogoutForm, login_form
from idp.prerender import PageCache, slot
from idp.security import audit, devices
from idp.security.headers import allow_form_target

bp = Blueprint("login", __name__)

# The form session remembers that the last answer asked for the captcha, so the next GET shows it.
CAPTCHA_FLAG = "login_captcha"

# The menu (R-L3): other packages' pages, linked by path (their labels are in login/login.html).
MENU = {
    "forgot_account": "/account/recover/account",
    "forgot_password": "/account/recover/password",
    "activate": "/account/recover/activate",
    "apply": "/account/apply",
    "join": "/account/join",
    "faq": "/help",
    "contact": "/help/contact",
}


def _carried(next_url: str) -> dict[str, str]:
    """What a link away from the login page carries: ``next`` (unless it is the home page) and the
    page's language when it is not the default (``ui_locales``: a hint, never overriding a choice
    the person made with the language switch)."""
    params: dict[str, str] = {}
    if next_url and next_url != "/":
        params["next"] = next_url
    locale = get_locale()
    current = "zh-TW" if locale is not None and locale.language == "zh" else "en"
    default = "zh-TW" if settings().default_locale.startswith("zh") else "en"
    if current != default:
        params["ui_locales"] = current
    return params


def menu_links(next_url: str) -> dict[str, str]:
    """Each menu entry's URL, carrying ``next`` and the language."""
    query = urlencode(_carried(next_url))
    return {key: path + (f"?{query}" if query else "") for key, path in MENU.items()}


def _page(form: LoginForm, status: int = 200, *, error: Any = None, headers: dict[str, str] | None = None) -> Any:
    next_url = sessions.safe_next(form.next.data)
    html = render_template("login/login.html", form=form, error=error, links=menu_links(next_url),
                           action=_action(next_url, form.force.data), counties=_counties(next_url))
    return html, status, headers or {}


def _action(next_url: str, force: Any) -> str:
    keep = {"next": next_url} if next_url != "/" else {}
    if force:
        keep["force"] = "1"
    if request.values.get("switch") == "1":
        keep["switch"] = "1"
    return url_for("login.login", **keep)


def _counties(next_url: str) -> list[Any]:
    """The county-account area's choices (idp.federation offers them; none when it offers none)."""
    offered = current_app.extensions.get("idp.county_logins")
    return offered(next_url) if offered is not None else []


_FIRST_VISITS = "idp.login_first_visits"


def _first_visit(next_url: str, force: bool) -> str:
    """The login page as most browsers first see it (nothing typed, no error, no captcha, no message),
    from a copy rendered once per language and shape with this request's values filled in
    (``idp.prerender``): the same HTML ``_page`` renders, for a fraction of the CPU (issue 11)."""
    counties = _counties(next_url)
    csrf = bool(current_app.config.get("WTF_CSRF_ENABLED", True))
    key = (str(get_locale()), force, csrf, tuple((c.name, c.label) for c in counties))
    pages = current_app.extensions.get(_FIRST_VISITS)
    if pages is None:
        pages = current_app.extensions[_FIRST_VISITS] = PageCache()

    def render() -> str:
        form = LoginForm(formdata=None, data={"next": slot("next"), "force": "1" if force else ""})
        if csrf:
            form.csrf_token.current_token = slot("csrf")
        return render_template(
            "login/login.html", form=form, error=None, action=slot("action"),
            links={k: slot(f"link-{k}") for k in MENU}, lang_url=lambda tag: slot(f"lang-{tag}"),
            counties=[type(c)(c.name, c.label, slot(f"county-{i}")) for i, c in enumerate(counties)])

    page = pages.page(key, render)
    values = {"next": next_url, "action": _action(next_url, force),
              **{f"link-{k}": v for k, v in menu_links(next_url).items()},
              **{f"county-{i}": c.url for i, c in enumerate(counties)}}
    if csrf:
        values["csrf"] = generate_csrf()
    for name in page.slots:
        if name.startswith("lang-"):
            values[name] = lang_url(name[len("lang-"):])
    return page.fill(values)


def first_page_for(next_url: str) -> str | None:
    """The login page, as a browser without a session first meets it, for the authorization request
    that is ``next_url`` to answer itself (``idp.login_page``, issue 11): the same page as
    ``/login?next=…`` shows, whose form posts there, one redirect and one request fewer per
    sign-in. None when this browser should see another shape of it (a captcha, a message waiting):
    the request then redirects to the login page as before."""
    if session.get(CAPTCHA_FLAG) or "_flashes" in session or current_app.jinja_env.auto_reload:
        return None
    _allow_next_target(next_url)
    return _first_visit(next_url, False)


def _again(form: LoginForm, with_captcha: bool) -> LoginForm:
    """The form shown again after a refusal: what was typed (never the password), a captcha if the
    account now needs one (always a new picture)."""
    session[CAPTCHA_FLAG] = with_captcha
    return login_form(with_captcha, formdata=None, data={
        "username": form.username.data, "next": form.next.data, "force": form.force.data})


def _allow_next_target(next_url: str) -> None:
    """The login form's post ends, through ``next``, at the app being signed in to: CSP form-action
    must allow that app's registered redirect origin (and only it)."""
    target = current_app.extensions.get("idp.redirect_target_of")
    uri = target(next_url) if target is not None else None
    if uri:
        allow_form_target(uri)


def _device_cookie() -> str:
    return settings().cookie_name(devices.COOKIE)


def _remember_device(resp: Response, username: str) -> Response:
    s = settings()
    value = devices.remember(request.cookies.get(_device_cookie()), username)
    resp.set_cookie(_device_cookie(), value, max_age=s.device_cookie_lifetime, path="/", secure=s.secure_cookies,
                    httponly=True, samesite="Lax")
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    next_url = sessions.safe_next(request.values.get("next"))
    force = request.values.get("force") == "1"
    switch = request.values.get("switch") == "1"
    device = request.cookies.get(_device_cookie())
    sso = sessions.current_session()
    _allow_next_target(next_url)
    if request.method == "GET":
        if sso is not None and not force and sessions.current_account() is not None:
            return redirect(next_url)
        prefill = ""
        if request.args.get("login_hint"):
            prefill = request.args["login_hint"][:64]
        elif force and not switch and sessions.current_account() is not None:
            # Re-authentication (prompt=login, max_age): the same person confirms the password.
            prefill = sessions.current_account().username
        wanted = bool(session.get(CAPTCHA_FLAG)) or bool(prefill and accounts.captcha_needed(
            prefill, request.remote_addr, device))
        if not wanted and not prefill and "_flashes" not in session and not current_app.jinja_env.auto_reload:
            return _first_visit(next_url, force)
        form = login_form(wanted, formdata=None, data={"username": prefill, "next": next_url,
                                                       "force": "1" if force else ""})
        return _page(form)
    # A closed gate first (nothing typed is checked or used up, the captcha included); then the
    # captcha is asked for, and checked, when this account name is past its free failures.
    try:
        check = accounts.sign_in_check(request.form.get("username", ""), request.remote_addr, device)
    except RateLimited as exc:
        typed = LoginForm()
        needed = accounts.captcha_needed(typed.username.data or "", request.remote_addr, device)
        return _page(_again(typed, needed), exc.status, error=exc.message,
                     headers={"Retry-After": str(exc.retry_after)})
    wanted = check.captcha_needed
    form = login_form(wanted)
    if not form.validate_on_submit():
        session[CAPTCHA_FLAG] = wanted
        return _page(form, 400)
    writes = store().batch()  # what a success writes to the store, sent with the new session
    try:
        account = accounts.authenticate(form.username.data, form.password.data, request.remote_addr, device,
                                        captcha_solved=wanted, checked=check, then=writes)
    except accounts.CaptchaRequired as exc:  # not a failure: nothing was tried
        form = _again(form, True)
        form.captcha.errors = [exc.message]
        return _page(form, exc.status)
    except IdpError as exc:
        if exc.status >= 500:
            raise
        writes.execute()  # a right password for a disabled account still forgets the failures
        commit()  # the failure's audit rows
        headers = {"Retry-After": str(exc.data["retry_after"])} if "retry_after" in exc.data else {}
        needed = accounts.captcha_needed(form.username.data, request.remote_addr, device)
        return _page(_again(form, needed), exc.status, error=exc.message, headers=headers)
    # The new session, the throttles forgotten and, when the authorization is answered below, its
    # code: one round trip to the store, sent once the sign-in's own rows are committed.
    sessions.start_session(account, batch=writes, send=False)
    commit(keep_loaded=True)  # the account goes on to the authorization below, as it was read
    go_on = current_app.extensions.get("idp.continue_after_sign_in")  # an authorization request's answer
    answer = go_on(next_url) if go_on is not None else None
    sessions.send_unsent()
    return _remember_device(answer if answer is not None else make_response(redirect(next_url)), account.username)


@bp.get("/")
def home() -> Any:
    account = sessions.current_account()
    if account is None:
        return _page(LoginForm(formdata=None, next="/"))
    return render_template("login/home.html", account=account, form=LogoutForm())


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Any:
    form = LogoutForm()
    sso = sessions.current_session()
    if request.method == "POST" and form.validate_on_submit():
        if sso is not None:
            account = sessions.current_account()
            sessions.end_session(sso.sid)
            audit.record(audit.LOGOUT, actor=account.username if account else None)
            commit()
        return render_template("login/logged_out.html")
    if sso is None:
        return redirect(url_for("login.home"))
    return render_template("login/logout.html", form=form)
