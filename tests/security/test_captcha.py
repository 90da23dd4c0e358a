"""The captcha (issue 10 item 10): single-use 5-digit answers in the store, picture and audio,
a forgiving comparison, the ``captcha.fail`` limit, and the form field pages will use.

Tests that need a setting of their own (a 1-second lifetime, a limit of 3) or a page with a form
build a separate app on the same backend, with its own store prefix, and clean it up after.
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import wave
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask, render_template_string
from flask_wtf import FlaskForm
from PIL import Image
from wtforms import StringField

from idp import create_app
from idp.errors import ServiceUnavailable
from idp.security import captcha

PAGE = """{% from "security/_captcha.html" import captcha_field %}
<form method="post" novalidate>{{ form.name(id="name") }}{{ captcha_field(form.captcha) }}</form>
{% if ok %}<p id="ok">accepted</p>{% endif %}"""


class TinyForm(FlaskForm):
    """A throwaway form as a page of the provider would declare it."""

    name = StringField("Name")
    captcha = captcha.CaptchaField()


def _page() -> str:
    form = TinyForm()
    ok = form.validate_on_submit()
    return render_template_string(PAGE, form=form, ok=ok)


@pytest.fixture
def make_app(app_config: dict) -> Iterator[Callable[..., Flask]]:
    """Apps with their own settings and a ``/t`` page holding ``TinyForm``."""
    made: list[Flask] = []

    def build(**overrides: object) -> Flask:
        app = create_app({**app_config, "store_prefix": f"{app_config['store_prefix']}cap{len(made)}:",
                          **overrides})
        app.config["WTF_CSRF_ENABLED"] = False  # the page's own CSRF is not what these tests are about
        app.add_url_rule("/t", "tiny", _page, methods=["GET", "POST"])
        made.append(app)
        return app

    yield build
    for app in made:
        with contextlib.suppress(redis.RedisError):  # the app whose Redis was made unreachable on purpose
            app.extensions["idp.store"].flush()


def _challenge(html: str) -> str:
    match = re.search(r'name="captcha-id" value="([A-Za-z0-9_-]+)"', html)
    assert match, "no captcha challenge on the page"
    return match.group(1)


def _answer(app: Flask, challenge_id: str) -> str:
    with app.app_context():
        answer = captcha.answer_for_tests(challenge_id)
    assert answer is not None
    return answer


def _check(app: Flask, challenge_id: str, answer: str, address: str = "192.0.2.10") -> bool:
    with app.test_request_context(environ_base={"REMOTE_ADDR": address}):
        return captcha.check(challenge_id, answer)


def test_picture_is_a_readable_png_never_cached(app, client) -> None:
    """R-N3: the picture is a 220x80 PNG served with Cache-Control: no-store (a back button never shows an old one)."""
    new = client.get("/captcha/new")
    assert new.status_code == 200 and new.headers["Cache-Control"] == "no-store"
    resp = client.get(new.json["image"])
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.headers["Cache-Control"] == "no-store"
    assert Image.open(io.BytesIO(resp.data)).size == (220, 80)
    assert new.json["image"] == f"/captcha/{new.json['id']}.png"


def test_audio_is_a_wav_of_the_same_challenge_never_cached(app, client) -> None:
    """R-N3: the audio alternative is a playable WAV, no-store, the same bytes each time (ranges work)."""
    new = client.get("/captcha/new").json
    resp = client.get(new["audio"])
    assert resp.status_code == 200 and resp.mimetype == "audio/wav"
    assert resp.headers["Cache-Control"] == "no-store"
    with wave.open(io.BytesIO(resp.data)) as wav:
        assert wav.getnchannels() == 1 and wav.getnframes() / wav.getframerate() > 3  # five spoken digits
    again = client.get(new["audio"], headers={"Range": "bytes=0-99"})
    assert again.status_code == 206 and again.data == resp.data[:100]


def test_right_answer_passes_once_and_never_twice(app) -> None:
    """R-C1: the right answer passes once; the same challenge answered again (a replay) fails."""
    with app.app_context():
        challenge_id = captcha.new()
    answer = _answer(app, challenge_id)
    assert len(answer) == 5 and answer.isdigit()
    assert _check(app, challenge_id, answer) is True
    assert _check(app, challenge_id, answer) is False


def test_wrong_answer_fails_and_uses_the_challenge_up(app, client) -> None:
    """R-C1: a wrong answer fails and the challenge is gone: the right answer then fails and its picture is a 404."""
    with app.app_context():
        challenge_id = captcha.new()
    answer = _answer(app, challenge_id)
    wrong = f"{(int(answer) + 1) % 100000:05d}"
    assert _check(app, challenge_id, wrong) is False
    with app.app_context():
        assert captcha.answer_for_tests(challenge_id) is None
    assert _check(app, challenge_id, answer) is False
    assert client.get(f"/captcha/{challenge_id}.png").status_code == 404


def test_challenge_expires_after_its_lifetime(make_app) -> None:
    """R-N3: after captcha_lifetime seconds the right answer no longer passes and the picture is a 404."""
    app = make_app(captcha_lifetime=1)
    with app.app_context():
        challenge_id = captcha.new()
    answer = _answer(app, challenge_id)
    time.sleep(1.3)
    assert app.test_client().get(f"/captcha/{challenge_id}.png").status_code == 404
    assert _check(app, challenge_id, answer) is False


@pytest.mark.parametrize("typed", [
    lambda a: "".join(chr(ord(c) + 0xFEE0) for c in a),  # full-width, as a Chinese IME types them
    lambda a: f" {a[:2]} {a[2:]} ",                      # spaces
    lambda a: f"{a[:3]}-{a[3:]}",                          # a dash
    lambda a: f"{a[:2]}\u3000{a[2:]}",                     # an ideographic space
    lambda a: "".join(chr(ord(c) - 0x30 + 0x0660) for c in a),  # Arabic-Indic digits
], ids=["fullwidth", "spaces", "dash", "ideographic-space", "arabic-indic"])
def test_answer_typed_with_full_width_digits_or_spaces_passes(app, typed) -> None:
    """R-C1: full-width digits from a Chinese IME, spaces and dashes count as the same answer."""
    with app.app_context():
        challenge_id = captcha.new()
    assert _check(app, challenge_id, typed(_answer(app, challenge_id))) is True


def test_unknown_or_malformed_ids_get_404_never_500(app, client) -> None:
    """R-N3: an unknown, malformed or hostile challenge id gets a 404 for the picture and the audio."""
    for bad in ("AAAAAAAAAAAAAAAAAAAAAAAA", "x", "..%2f..%2fetc", "A" * 300, "%00" * 24, "新" * 24):
        for ext in ("png", "wav"):
            assert client.get(f"/captcha/{bad}.{ext}").status_code == 404, (bad, ext)
    with app.test_request_context():
        assert captcha.check("not an id", "12345") is False
        assert captcha.check(None, None) is False  # type: ignore[arg-type]


def test_too_many_wrong_answers_from_one_address_get_429(make_app) -> None:
    """R-N3: past captcha.fail (here 3) wrong answers an address gets 429 with Retry-After; another address does not."""
    app = make_app(captcha_failures_per_address=3)
    browser = app.test_client()
    for _ in range(3):
        challenge_id = _challenge(browser.get("/t?lang=en").get_data(as_text=True))
        resp = browser.post("/t?lang=en", data={"captcha": "00000x", "captcha-id": challenge_id})
        assert resp.status_code == 200 and "not right" in resp.get_data(as_text=True)
    challenge_id = _challenge(browser.get("/t").get_data(as_text=True))
    refused = browser.post("/t", data={"captcha": _answer(app, challenge_id), "captcha-id": challenge_id})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    classmate = app.test_client()
    classmate.environ_base["REMOTE_ADDR"] = "192.0.2.99"
    challenge_id = _challenge(classmate.get("/t").get_data(as_text=True))
    resp = classmate.post("/t", data={"captcha": _answer(app, challenge_id), "captcha-id": challenge_id})
    assert resp.status_code == 200 and 'id="ok"' in resp.get_data(as_text=True)


def test_form_shows_an_accessible_captcha(make_app) -> None:
    """R-N3: the form shows picture (alt text), audio, new-picture link, a labelled numeric input and hint."""
    app = make_app()
    html = app.test_client().get("/t?lang=en").get_data(as_text=True)
    challenge_id = _challenge(html)
    assert f'src="/captcha/{challenge_id}.png"' in html and 'alt="Security code picture"' in html
    assert f'<audio controls preload="none" src="/captcha/{challenge_id}.wav"' in html
    assert "Listen to the security code" in html
    assert re.search(r'<a class="captcha-refresh" href="/t\?lang=en"[^>]*>New picture</a>', html)
    assert '<label for="captcha">Security code</label>' in html
    field = re.search(r"<input [^>]*name=\"captcha\"[^>]*>", html).group(0)
    for attribute in ('inputmode="numeric"', 'autocomplete="off"', 'aria-describedby="captcha-hint"', "required"):
        assert attribute in field
    assert 'id="captcha-hint"' in html and "/static/captcha.js" in html
    assert "<style" not in html and "<script>" not in html  # strict CSP: no inline code


def test_form_accepts_the_right_answer_once(make_app) -> None:
    """R-C1: a form with the captcha is accepted with the right answer; the same post sent again is refused."""
    app = make_app()
    browser = app.test_client()
    challenge_id = _challenge(browser.get("/t").get_data(as_text=True))
    data = {"name": "x", "captcha": _answer(app, challenge_id), "captcha-id": challenge_id}
    assert 'id="ok"' in browser.post("/t", data=data).get_data(as_text=True)
    assert 'id="ok"' not in browser.post("/t", data=data).get_data(as_text=True)


def test_wrong_answer_shows_the_error_and_a_new_picture(make_app) -> None:
    """R-C1: a wrong answer is refused beside the field (aria-describedby), not echoed, with a new picture."""
    app = make_app()
    browser = app.test_client()
    challenge_id = _challenge(browser.get("/t?lang=en").get_data(as_text=True))
    html = browser.post("/t?lang=en", data={"name": "x", "captcha": "98x76", "captcha-id": challenge_id}
                        ).get_data(as_text=True)
    assert 'id="ok"' not in html
    assert re.search(r'<p class="field-error" id="captcha-error">The security code was not right\.', html)
    field = re.search(r"<input [^>]*name=\"captcha\"[^>]*>", html).group(0)
    assert 'aria-describedby="captcha-hint captcha-error"' in field and 'aria-invalid="true"' in field
    assert "98x76" not in html
    fresh = _challenge(html)
    assert fresh != challenge_id and _answer(app, fresh)


def test_empty_or_expired_answer_is_refused_with_a_message(make_app) -> None:
    """R-C1: an empty answer asks for the code; a post without a challenge (an expired page) is refused, never a 500."""
    app = make_app()
    browser = app.test_client()
    challenge_id = _challenge(browser.get("/t?lang=en").get_data(as_text=True))
    html = browser.post("/t?lang=en", data={"captcha": " ", "captcha-id": challenge_id}).get_data(as_text=True)
    assert "Please type the security code." in html
    with app.app_context():
        assert captcha.answer_for_tests(challenge_id) is None  # used up: the page shows a new one
    resp = browser.post("/t?lang=en", data={"captcha": "12345"})
    assert resp.status_code == 200 and "not right" in resp.get_data(as_text=True)


def test_answer_for_tests_refuses_outside_testing(make_app) -> None:
    """R-N3: answer_for_tests, a captcha bypass, raises anywhere but env=testing."""
    app = make_app(env="development")
    with app.app_context():
        challenge_id = captcha.new()
        with pytest.raises(RuntimeError):
            captcha.answer_for_tests(challenge_id)


@pytest.mark.parametrize("policy", ["closed", "open"])
def test_store_down_follows_the_rate_limit_policy(make_app, policy) -> None:
    """R-N3: with Redis down, closed refuses (503) and open lets the answer through, as for every limit."""
    app = make_app(redis_url="redis://127.0.0.1:1/0", rate_limit_when_store_down=policy)
    with app.test_request_context():
        if policy == "closed":
            with pytest.raises(ServiceUnavailable):
                captcha.new()
            with pytest.raises(ServiceUnavailable):
                captcha.check("A" * 24, "12345")
        else:
            assert captcha.check(captcha.new(), "12345") is True
