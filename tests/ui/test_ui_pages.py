"""Look and feel as a person meets it, without a browser (issue 10 item 12): the layout's landmarks and
language switch, error summaries tied to their fields, WTForms' own messages in Traditional Chinese,
times in Taipei time, the language a relying party asked for kept through the sign-in, and error pages
that offer a way forward. The browser half (axe-core, 320 px, focus) is in tests/browser/.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
from urllib.parse import urlencode

import pytest
from factories import AccountFactory, ClientFactory
from helpers import csrf_from, login, sign_in

from idp.extensions import db


def _pkce_params(rp, **extra: str) -> dict[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return {"response_type": "code", "client_id": rp.client_id, "redirect_uri": rp.redirect_uris[0],
            "scope": "openid profile email", "state": "s1", "nonce": "n1", "code_challenge": challenge,
            "code_challenge_method": "S256", **extra}


def _follow_to_page(client, path: str) -> str:
    """GET ``path`` and follow redirects on the provider; the final page's HTML."""
    resp = client.get(path)
    for _ in range(5):
        if resp.status_code not in (301, 302, 303):
            break
        resp = client.get(resp.headers["Location"])
    return resp.get_data(as_text=True)


@pytest.fixture
def operator(app):
    return AccountFactory(username="operator1", operator=True, name="維運人員")


@pytest.fixture
def console(client, operator):
    sign_in(client, operator)
    return client


# -- layout ------------------------------------------------------------------------------------
def test_every_page_has_skip_link_lang_and_help_links(client) -> None:
    """R-L1, R-H1: the page starts with a skip link to the main content, <html lang> matches the page's
    language, and the footer links 常見問題 (/help) and 聯絡我們 (/help/contact)."""
    zh = client.get("/login").get_data(as_text=True)
    body = zh[zh.index("<body>"):]
    first_link = re.search(r"<a [^>]*>", body).group(0)
    assert 'class="skip-link"' in first_link and 'href="#main"' in first_link
    assert '<main id="main" tabindex="-1"' in zh
    assert '<html lang="zh-Hant-TW">' in zh
    assert 'href="/help"' in zh and 'href="/help/contact"' in zh
    en = client.get("/login?lang=en").get_data(as_text=True)
    assert '<html lang="en">' in en and 'href="/help/contact"' in en


def test_language_switch_marks_the_current_language_and_keeps_the_query(client) -> None:
    """R-L1: the language switch shows which language is on (aria-current, not a link to itself) and the
    other language's link keeps the page's query (a sign-in in progress is not lost)."""
    html = client.get("/login?next=%2Faccount%2Fapps&lang=en").get_data(as_text=True)
    switch = html[html.index('<nav class="lang"'):html.index("</nav>", html.index('<nav class="lang"'))]
    assert re.search(r'<span class="current" aria-current="true" lang="en">English</span>', switch)
    assert 'href="/login?next=%2Faccount%2Fapps&amp;lang=zh-TW"' in switch
    assert switch.count("<a ") == 1  # no link to the page the person is on


def test_no_inline_script_or_style_on_any_page(client, console) -> None:
    """R-N3: pages work under the strict CSP: no inline <script>, <style> or style="" anywhere."""
    for path in ("/login", "/admin/clients", "/admin/clients/new", "/admin/audit", "/admin/people", "/nowhere"):
        html = console.get(path).get_data(as_text=True)
        assert "<style" not in html and " style=" not in html, path
        for tag in re.findall(r"<script[^>]*>", html):
            assert 'src="/static/' in tag, (path, tag)


def test_console_header_names_the_operator_and_offers_sign_out(console) -> None:
    """R-O3: the console's header says who is signed in and links to sign out."""
    html = console.get("/admin/clients").get_data(as_text=True)
    header = html[html.index('<header class="site">'):html.index("</header>")]
    assert "維運人員" in header and "operator1" in header
    assert 'href="/logout"' in header


def test_console_tables_scroll_in_their_own_box(console) -> None:
    """R-O3: each console table sits in its own scrolling, keyboard-reachable box (no page overflow at 320 px)."""
    ClientFactory(client_id="wide-app")
    html = console.get("/admin/clients").get_data(as_text=True)
    assert re.search(r'<div class="table-wrap" role="region" tabindex="0" aria-label="[^"]+">\s*<table>', html)


# -- error summary and fields --------------------------------------------------------------------
def test_refused_sign_in_heads_an_error_summary_tied_to_both_fields(client, app) -> None:
    """R-L1, R-N4: a refused sign-in shows one message in a focusable alert summary; both inputs are
    marked invalid and point at it; nothing says which of the two was wrong."""
    AccountFactory(username="student1")
    resp = login(client, "student1", "not-the-password")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 401
    summary = re.search(r'<div class="error-summary" id="error-summary" role="alert" tabindex="-1"[^>]*>', html)
    assert summary, html
    for name in ("username", "password"):
        tag = re.search(rf'<input [^>]*name="{name}"[^>]*>', html).group(0)
        assert 'aria-invalid="true"' in tag and 'aria-describedby="error-summary"' in tag
        assert "autofocus" not in tag  # focus goes to the summary (forms.js), not to a field
    assert 'value="student1"' in html  # the typed account is kept for correction


def test_console_form_error_links_to_its_field_and_describes_it(console) -> None:
    """R-N4, R-O3: a console form refused for one field lists the error at the top as a link to that field;
    the field is marked invalid and described by its error text; the typed values are kept."""
    page = console.get("/admin/clients/new").get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "name": "", "redirect_uris": "https://app.example.edu.tw/cb",
            "grant_types": ["authorization_code"], "scope": ["openid"], "token_endpoint_auth_method": "none",
            "id_token_signed_response_alg": "RS256", "subject_type": "public"}
    resp = console.post("/admin/clients/new", data=data)
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert re.search(r'<div class="error-summary"[^>]*role="alert"', html)
    assert re.search(r'<a href="#name">[^<]+</a>', html)
    tag = re.search(r'<input [^>]*name="name"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in tag and 'aria-describedby="name-error"' in tag
    assert re.search(r'<p class="field-error" id="name-error">', html)
    assert "https://app.example.edu.tw/cb" in html


def test_wtforms_messages_are_traditional_chinese(console) -> None:
    """R-L1, R-N4: WTForms' own messages (a required field left empty) are in Traditional Chinese, never
    Simplified; in English when the page is English."""
    page = console.get("/admin/clients/new").get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "name": "", "token_endpoint_auth_method": "none",
            "id_token_signed_response_alg": "RS256", "subject_type": "public"}
    zh = console.post("/admin/clients/new", data=data).get_data(as_text=True)
    assert "该字段是必填字段" not in zh and "此欄位是必需的" in zh
    console.get("/admin/clients/new?lang=en")
    en = console.post("/admin/clients/new", data={**data, "csrf_token": csrf_from(page)}).get_data(as_text=True)
    assert "This field is required." in en


def test_field_macro_renders_every_kind_of_field(app) -> None:
    """R-N4: the shared field macro gives every input a label, its hint and error ids in aria-describedby,
    aria-invalid when wrong, radios in a fieldset with a legend, and keeps autocomplete."""
    from flask import render_template_string
    from flask_wtf import FlaskForm
    from wtforms import (
        BooleanField,
        DateField,
        EmailField,
        PasswordField,
        RadioField,
        SelectField,
        StringField,
        TelField,
    )
    from wtforms.fields.choices import SelectChoice
    from wtforms.validators import DataRequired

    class Everything(FlaskForm):
        name = StringField("Name", validators=[DataRequired()], render_kw={"autocomplete": "name"})
        secret = PasswordField("Password", render_kw={"autocomplete": "new-password"})
        email = EmailField("E-mail", render_kw={"autocomplete": "email"})
        phone = TelField("Mobile", render_kw={"autocomplete": "tel"})
        county = SelectField("County", choices=[SelectChoice("a", "A"), SelectChoice("b", "B")])
        role = RadioField("Role", choices=[SelectChoice("student", "Student"), SelectChoice("teacher", "Teacher")],
                          validators=[DataRequired()])
        agree = BooleanField("I agree")
        born = DateField("Birthday")

    with app.test_request_context("/", method="POST", data={}):
        form = Everything(meta={"csrf": False})
        form.validate()
        html = render_template_string(
            '{% from "_forms.html" import form_errors, field, submit %}{{ form_errors(form) }}'
            '{% for f in form %}{{ field(f, hint="Hint " ~ f.name) }}{% endfor %}{{ submit("Next") }}', form=form)
    for f in ("name", "secret", "email", "phone", "county", "agree", "born"):
        assert re.search(rf'<label for="{f}">', html), f
        assert f'id="{f}-hint"' in html
        tag = re.search(rf'<(input|select) [^>]*id="{f}"[^>]*>', html).group(0)
        assert f"{f}-hint" in tag.split('aria-describedby="')[1].split('"')[0], tag
    name_tag = re.search(r'<input [^>]*id="name"[^>]*>', html).group(0)
    assert 'aria-describedby="name-hint name-error"' in name_tag and 'aria-invalid="true"' in name_tag
    assert 'autocomplete="name"' in name_tag
    assert 'autocomplete="new-password"' in html and 'autocomplete="email"' in html and 'autocomplete="tel"' in html
    assert re.search(r'<fieldset [^>]*aria-describedby="role-hint role-error"[^>]*>\s*<legend>Role</legend>', html)
    assert re.search(r'<input [^>]*aria-invalid="true"[^>]*id="role-0"', html)
    assert '<a href="#role-0">' in html and '<a href="#name">' in html
    assert '<button type="submit">Next</button>' in html
    assert 'type="date"' in html


# -- times ---------------------------------------------------------------------------------------
def test_local_time_shows_taipei_time(app) -> None:
    """R-L1: stored UTC times are shown as Taipei time, to the minute: 2026-12-02 02:47 UTC → 10:47."""
    from idp.i18n import local_time

    utc = dt.datetime(2026, 12, 2, 2, 47, 52, 749899, tzinfo=dt.UTC)
    with app.test_request_context("/"):
        assert local_time(utc) == "2026-12-02 10:47"
        assert local_time(utc.replace(tzinfo=None)) == "2026-12-02 10:47"  # SQLite gives naive UTC
        assert local_time("2026-12-02T02:47:52.749899+00:00") == "2026-12-02 10:47"
        assert local_time(int(utc.timestamp())) == "2026-12-02 10:47"
        assert local_time(utc, seconds=True) == "2026-12-02 10:47:52"
        assert local_time(None) == "–" and local_time(dt.date(2015, 5, 21)) == "2015-05-21"


def test_console_shows_times_in_taipei_time(console) -> None:
    """R-O3: the audit trail and an app's page show Taipei time, never ISO UTC strings."""
    from zoneinfo import ZoneInfo

    from idp.oidc.models import Client
    from idp.security import audit
    from idp.security.models import AuditEvent

    ClientFactory(client_id="timed-app")
    audit.record(audit.LOGIN_SUCCESS, actor="student1")
    db.session.commit()
    row = db.session.execute(db.select(Client).filter_by(client_id="timed-app")).scalar_one()
    page = console.get("/admin/clients/timed-app").get_data(as_text=True)
    taipei = ZoneInfo("Asia/Taipei")
    assert "+00:00" not in page and row.created_at.astimezone(taipei).strftime("%Y-%m-%d %H:%M") in page
    audit = console.get("/admin/audit").get_data(as_text=True)
    event = db.session.execute(db.select(AuditEvent).order_by(AuditEvent.id.desc())).scalars().first()
    at = event.at if event.at.tzinfo else event.at.replace(tzinfo=dt.UTC)
    assert at.astimezone(ZoneInfo("Asia/Taipei")).strftime("%Y-%m-%d %H:%M:%S") in audit
    assert "UTC+8" in audit  # the zone is said once


# -- language through the sign-in ---------------------------------------------------------------
def test_ui_locales_survives_the_redirect_to_the_login_page(client) -> None:
    """R-L1: an app's ui_locales=en gives an English login page and an English consent page."""
    rp = ClientFactory()
    AccountFactory(username="student1", kind="cloud")
    login_page = _follow_to_page(client, "/oauth/authorize?" + urlencode(_pkce_params(rp, ui_locales="en")))
    assert '<html lang="en">' in login_page and 'name="password"' in login_page
    next_url = re.search(r'name="next" type="hidden" value="([^"]+)"', login_page).group(1).replace("&amp;", "&")
    resp = client.post("/login", data={"csrf_token": csrf_from(login_page), "username": "student1",
                                       "password": "Correct-Horse-9", "next": next_url})
    assert resp.status_code == 302
    consent = _follow_to_page(client, resp.headers["Location"])
    assert '<html lang="en">' in consent and 'name="allow"' in consent


def test_a_persons_language_choice_wins_over_the_apps_hint(client) -> None:
    """R-L1: a person who switches to 中文 on the login page keeps Chinese on the consent page, although the
    app's request (carried in next) still says ui_locales=en."""
    rp = ClientFactory()
    account = AccountFactory(username="student1", kind="cloud")
    _follow_to_page(client, "/oauth/authorize?" + urlencode(_pkce_params(rp, ui_locales="en")))
    zh = client.get("/login?lang=zh-TW").get_data(as_text=True)
    assert '<html lang="zh-Hant-TW">' in zh
    sign_in(client, account)
    consent = _follow_to_page(client, "/oauth/authorize?" + urlencode(_pkce_params(rp, ui_locales="en")))
    assert '<html lang="zh-Hant-TW">' in consent and 'name="allow"' in consent


# -- ways forward --------------------------------------------------------------------------------
def test_error_page_offers_a_way_forward(client) -> None:
    """R-N4, R-H1: a 400 page offers the sign-in page, the FAQ and 聯絡我們, and going back."""
    rp = ClientFactory()
    html = client.get("/oauth/authorize?" + urlencode(_pkce_params(rp, redirect_uri="https://evil.example/cb"))
                      ).get_data(as_text=True)
    assert 'data-error="invalid_redirect_uri"' in html
    ways = html[html.index('<ul class="ways-forward">'):]
    assert 'href="/"' in ways and 'href="/help"' in ways and 'href="/help/contact"' in ways
    assert "data-back" in ways


def test_expired_form_page_offers_the_form_again(client) -> None:
    """R-N4: a form sent with an expired CSRF token gets a page linking back to a fresh form."""
    resp = client.post("/login?next=%2Faccount%2Fapps", data={"username": "x", "password": "y"})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'data-error="csrf_failed"' in html
    assert 'href="/login?next=%2Faccount%2Fapps"' in html


def test_real_name_refusal_offers_apply_and_another_account(client) -> None:
    """R-A3, R-C2: the real-name refusal links to 申請帳號 and to signing in with another account."""
    rp = ClientFactory(client_id="realname", require_real_name=True)
    sign_in(client, AccountFactory(username="member1", kind="member"))
    resp = client.get("/oauth/authorize?" + urlencode(_pkce_params(rp)))
    html = resp.get_data(as_text=True)
    assert resp.status_code == 403 and 'data-error="real_name_required"' in html
    assert 'href="/account/apply"' in html
    assert re.search(r'<a href="[^"]+" data-switch-account>', html)  # sign in with another account


def test_form_fields_render_exactly_as_wtforms_would(app) -> None:
    """Issue 11: the faster attribute writer every form field uses gives WTForms' own output, byte for byte, for
    names and values that need escaping, boolean attributes, data-/aria- names and Markup values."""
    from markupsafe import Markup

    from idp import forms

    assert forms.wtforms_html_params is not None  # installed by create_app
    cases = [
        {"name": "username", "id": "username", "value": "", "required": True, "autofocus": False, "maxlength": 64},
        {"value": 'a "quoted" <b>&amp;</b> \'x\'', "class_": "wide", "data_user_name": "王小明",
         "aria_describedby": "h e"},
        {"value": Markup('<i class="x">ok</i>'), "for_": "f", "aria_invalid": "true", "checked": True,
         "disabled": False},
        {"weird<key": "v", "n": 0, "empty": None},
    ]
    for case in cases:
        assert forms.html_params(**case) == forms.wtforms_html_params(**case), case
        assert isinstance(forms.html_params(**case), Markup)
