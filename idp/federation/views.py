"""County-account sign-in pages (R-L2): ``/login/county/<name>`` and its callback, the logout return.

Every failure is a page that names the county and offers the cloud-account sign-in (and 忘記帳號
where the person may not know their cloud account): never a 500, never a token in a URL we make.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import get_locale

from idp.db import commit
from idp.federation import services
from idp.federation.services import CountyError
from idp.forms import safe_next

bp = Blueprint("federation", __name__, url_prefix="/login/county")


def _ui_locales() -> str:
    locale = get_locale()
    return "zh-TW" if locale is None or locale.language == "zh" else "en"


def _refusal(exc: CountyError, name: str, next_url: str = "/") -> Any:
    """The page for a county sign-in that did not work: which county, why, and the ways forward."""
    template = {
        services.CountyDown: "federation/county_down.html",
        services.NotAtCountySchool: "federation/not_enrolled.html",
        services.AccountDisabled: "federation/account_disabled.html",
    }.get(type(exc), "federation/refused.html")
    headers = {"Retry-After": "60"} if isinstance(exc, services.CountyDown) else {}
    login = url_for("login.login", **({"next": next_url} if next_url and next_url != "/" else {}))
    return render_template(template, error=exc, county=exc.county, name=name, login_url=login,
                           retry_url=url_for("federation.begin", name=name,
                                             **({"next": next_url} if next_url != "/" else {}))), \
        exc.status, headers


@bp.get("/<name>")
def begin(name: str) -> Any:
    """Send the browser to the county's sign-in (a plain link on the login page: no form to forge)."""
    next_url = safe_next(request.args.get("next"), "/") or "/"
    try:
        url = services.begin(name, next_url, request.args.get("ui_locales") or _ui_locales())
    except CountyError as exc:
        return _refusal(exc, name, next_url)
    return redirect(url)


@bp.get("/<name>/callback")
def callback(name: str) -> Any:
    """The county's answer (our redirect URI): verified, then the person is signed in."""
    from idp.identity import assurance
    from idp.login import sessions

    try:
        result = services.finish(name, request.args)
    except CountyError as exc:
        commit()  # the refusal's audit row
        return _refusal(exc, name)
    sso = sessions.start_session(result.account, amr=[assurance.AMR_FEDERATED], acr=assurance.acr_for(result.account))
    services.signed_in(sso, result)
    commit()
    return redirect(safe_next(result.next_url, "/") or "/")


@bp.get("/<name>/logged-out")
def logged_out(name: str) -> Any:
    """Back from the county's end-session endpoint: on to where our logout was going, or the page."""
    client = services.client_for(name)
    then = services.take_continuation(name, request.args.get("state"))
    if then:
        return redirect(then)
    return render_template("federation/logged_out.html", county=services.county_label(client.provider.county),
                           ended=True, then=None)


@bp.get("/<name>/signed-out")
def signed_out(name: str) -> Any:
    """Our logout is done but the county has no end-session endpoint: say its session may be open."""
    client = services.client_for(name)
    then = services.take_continuation(name, request.args.get("state"))
    return render_template("federation/logged_out.html", county=services.county_label(client.provider.county),
                           ended=False, then=then)
