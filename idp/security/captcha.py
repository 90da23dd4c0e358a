"""Captcha for the identification steps and for sign-ins after repeated failures (issue 10, R-N3).

A challenge is 5 digits kept in the service's store (Redis or in-process) under a random id for
``captcha_lifetime`` seconds. Digits only: the audio alternative (for people who cannot read the
picture) must read the same answer as the image, and the ``captcha`` package's voices say digits
clearly (its letters are easily misheard); digits also bring up the number pad on phones and need
no switch of input method. The picture is drawn gentler than the package's default (less rotation
and warping, one dark ink on a light background): the people typing it are children.

Why these rules:

- **Single use.** ``check`` deletes the answer on the first check, right or wrong, so one solved
  picture cannot be replayed and one unsolved picture cannot be guessed at 100 000 times.
- **Forgiving comparison.** NFKC, every Unicode decimal digit read as its ASCII digit, spaces and
  dashes dropped, case folded: full-width digits typed with a Chinese IME (``４０７１８``) and
  ``407 18`` are the same answer. Compared in constant time.
- **A ceiling per address.** Each wrong answer counts against the named limit ``captcha.fail``
  (``captcha_failures_per_address`` per ``captcha_failure_window``); past it ``check`` raises
  ``RateLimited`` (429), so a solver farm behind one address is slowed, while a class of pupils
  behind the school's one address does not meet it by mistyping.
- **Store down.** ``rate_limit_when_store_down`` decides, as for every other limit: ``closed``
  refuses with 503 (an attacker who can take Redis down gets no free pass), ``open`` lets the
  answer through with a warning (the operator chose availability).

The picture and the audio are drawn again on each request (they are cheap to make and never
stored); the audio, which is slower to make (~0.3 s of CPU), is kept in the store for the
challenge's remaining life so that a browser's range requests and replays get the same bytes.
"""

from __future__ import annotations

import hmac
import io
import logging
import re
import secrets
import threading
import unicodedata
from typing import Any

from captcha.audio import AudioCaptcha
from captcha.image import ImageCaptcha
from flask import Blueprint, Flask, Response, jsonify, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from PIL.Image import Image
from PIL.Image import new as new_image
from PIL.ImageDraw import Draw
from PIL.ImageFilter import SMOOTH
from wtforms import Field
from wtforms.utils import unset_value
from wtforms.validators import StopValidation
from wtforms.widgets import TextInput

from idp.errors import NotFound, ServiceUnavailable
from idp.extensions import settings, store
from idp.security import ratelimit
from idp.store import StoreUnavailable

log = logging.getLogger(__name__)

DIGITS = 5
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{24}")  # secrets.token_urlsafe(18)
_MAX_ANSWER = 64  # characters of an answer looked at; anything longer is wrong anyway

bp = Blueprint("captcha", __name__, url_prefix="/captcha")


# -- the challenge -----------------------------------------------------------------------------
def _key(challenge_id: str) -> str:
    return f"captcha:{challenge_id}"


def _audio_key(challenge_id: str) -> str:
    return f"captcha:{challenge_id}:wav"


def _valid_id(challenge_id: Any) -> bool:
    return isinstance(challenge_id, str) and ID_PATTERN.fullmatch(challenge_id) is not None


def _store_down(exc: Exception) -> bool:
    """The ``rate_limit_when_store_down`` policy; True means let the person through."""
    if settings().rate_limit_when_store_down == "open":
        log.warning("captcha store unreachable (%s): failing open", type(exc).__name__)
        return True
    log.error("captcha store unreachable (%s): failing closed", type(exc).__name__)
    raise ServiceUnavailable() from exc


def new() -> str:
    """A new challenge id; its answer (5 digits) lives in the store for ``captcha_lifetime``."""
    challenge_id = secrets.token_urlsafe(18)
    answer = "".join(secrets.choice("0123456789") for _ in range(DIGITS))
    try:
        store().set(_key(challenge_id), answer, settings().captcha_lifetime)
    except StoreUnavailable as exc:
        _store_down(exc)  # open: the id has no answer; ``check`` lets it through while the store is down
    return challenge_id


def normalise(answer: str) -> str:
    """What a person meant: NFKC (full-width to ASCII), any decimal digit as ASCII, spaces,
    dashes and invisible format characters dropped, case folded."""
    out = []
    for ch in unicodedata.normalize("NFKC", answer[:_MAX_ANSWER]):
        category = unicodedata.category(ch)
        if ch.isspace() or category in ("Pd", "Zs", "Cf"):
            continue
        out.append(str(unicodedata.decimal(ch)) if category == "Nd" else ch)
    return "".join(out).casefold()


def _address() -> str:
    return request.remote_addr or "unknown"


def fail_limit() -> ratelimit.Limit:
    """Wrong answers per client address (the named limit ``captcha.fail``)."""
    s = settings()
    return ratelimit.Limit("captcha.fail", s.captcha_failures_per_address, s.captcha_failure_window)


def check(challenge_id: str, answer: str) -> bool:
    """True when ``answer`` is the challenge's answer. Single use: the answer is gone after this
    call, right or wrong. A wrong, unknown or expired one counts against ``captcha.fail`` for the
    request's address; past that limit this raises ``RateLimited`` (before looking). Needs a
    request context (the address)."""
    limit, address = fail_limit(), _address()
    ratelimit.check(limit, address)
    right = False
    if _valid_id(challenge_id):
        try:
            stored = store().getdel(_key(challenge_id))
            store().delete(_audio_key(challenge_id))
        except StoreUnavailable as exc:
            return _store_down(exc)
        if stored is not None:
            right = hmac.compare_digest(normalise(str(answer or "")).encode(errors="replace"), stored)
    if not right:
        ratelimit.count_failure(limit, address)
    return right


def discard(challenge_id: str) -> None:
    """Forget a challenge without judging an answer (a form sent with the captcha left empty)."""
    if _valid_id(challenge_id):
        try:
            store().delete(_key(challenge_id), _audio_key(challenge_id))
        except StoreUnavailable as exc:
            _store_down(exc)


def answer_for_tests(challenge_id: str) -> str | None:
    """The stored answer, for browser tests that must solve the captcha as a person would. Only
    when ``env`` is ``testing``: anywhere else it would be a captcha bypass."""
    if settings().env != "testing":
        raise RuntimeError("captcha.answer_for_tests is only available when env is 'testing'")
    raw = store().get(_key(challenge_id)) if _valid_id(challenge_id) else None
    return None if raw is None else raw.decode()


def _answer(challenge_id: str) -> str:
    """The answer for drawing, or 404 for an id that is malformed, unknown, used or expired."""
    if not _valid_id(challenge_id):
        raise NotFound()
    raw = store().get(_key(challenge_id))
    if raw is None:
        raise NotFound()
    return raw.decode()


def urls(challenge_id: str) -> dict[str, str]:
    """Where the page finds the picture and the audio of a challenge."""
    return {"image": url_for("captcha.image", challenge_id=challenge_id),
            "audio": url_for("captcha.audio", challenge_id=challenge_id)}


# -- drawing -----------------------------------------------------------------------------------
INKS = ((20, 40, 110), (0, 80, 45), (105, 30, 20), (35, 35, 35), (80, 20, 100))  # >= 7:1 on the paper


class GentleImageCaptcha(ImageCaptcha):
    """The package's picture with less rotation, warping and overlap, solid dark ink (the
    package masks glyphs by their brightness, which makes dark ink faint) and fewer, paler dots."""

    character_offset_dx = (0, 2)
    character_offset_dy = (0, 4)
    character_rotate = (-8, 8)
    character_warp_dx = (0.05, 0.12)
    character_warp_dy = (0.05, 0.12)
    word_space_probability = 0.85
    word_offset_dx = 0.08

    def create_captcha_image(self, chars: str, color: Any, background: Any) -> Image:
        draw = Draw(new_image("RGB", (1, 1)))
        glyphs: list[Image] = []
        for c in chars:
            if secrets.randbelow(100) >= 100 * self.word_space_probability:
                glyphs.append(self._draw_character(" ", draw, color))
            glyphs.append(self._draw_character(c, draw, color))
        text_width = sum(g.size[0] for g in glyphs)
        width = max(text_width + 20, self._width)
        image = new_image("RGB", (width, self._height), background)
        offset = max(10, (width - text_width) // 2)
        squeeze = int(self.word_offset_dx * text_width / len(chars))
        for glyph in glyphs:
            w, h = glyph.size
            image.paste(glyph, (offset, (self._height - h) // 2), glyph.getchannel("A"))
            offset += w - secrets.randbelow(squeeze + 1)
        if width > self._width:
            image = image.resize((self._width, self._height))
        return image

    def generate_image(self, chars: str, bg_color: Any = None, fg_color: Any = None) -> Image:
        ink = fg_color or secrets.choice(INKS)
        paper = bg_color or tuple(245 + secrets.randbelow(11) for _ in range(3))
        image = self.create_captcha_image(chars, ink, paper)
        self.create_noise_dots(image, tuple((c + 400) // 3 for c in ink), width=2, number=25)
        self.create_noise_curve(image, ink)
        return image.filter(SMOOTH)


WIDTH, HEIGHT = 220, 80
_lock = threading.Lock()
_makers: dict[str, Any] = {}


def _maker(kind: str) -> Any:
    """One picture and one audio maker per process, built once (fonts and voices loaded before
    the maker is shared: the package loads voices lazily, which is not safe across threads)."""
    maker = _makers.get(kind)
    if maker is None:
        with _lock:
            maker = _makers.get(kind)
            if maker is None:
                if kind == "image":
                    maker = GentleImageCaptcha(WIDTH, HEIGHT, font_sizes=(46, 50, 54))
                    maker.truefonts  # noqa: B018  (load the fonts now)
                else:
                    maker = AudioCaptcha()
                    maker.load()
                _makers[kind] = maker
    return maker


def _no_store(resp: Response) -> Response:
    resp.headers["Cache-Control"] = "no-store"
    return resp


# -- routes ------------------------------------------------------------------------------------
@bp.get("/new")
def new_challenge() -> Response:
    """A fresh challenge for the page's "new picture" button (captcha.js)."""
    challenge_id = new()
    return _no_store(jsonify(id=challenge_id, **urls(challenge_id)))


@bp.get("/<challenge_id>.png")
def image(challenge_id: str) -> Response:
    answer = _answer(challenge_id)
    out = io.BytesIO()
    _maker("image").generate_image(answer).save(out, format="PNG")
    return _no_store(Response(out.getvalue(), mimetype="image/png"))


@bp.get("/<challenge_id>.wav")
def audio(challenge_id: str) -> Response:
    answer = _answer(challenge_id)
    data = store().get(_audio_key(challenge_id))
    if data is None:  # two range requests at once: the first one stored wins, both send it
        made = bytes(_maker("audio").generate(answer))
        store().add(_audio_key(challenge_id), made, store().ttl(_key(challenge_id)) or 1)
        data = store().get(_audio_key(challenge_id)) or made
    resp = Response(data, mimetype="audio/wav")
    resp.make_conditional(request, accept_ranges=True, complete_length=len(data))
    return _no_store(resp)


# -- the form field ----------------------------------------------------------------------------
class CaptchaField(Field):
    """The answer input of a captcha, with the challenge it answers.

    Rendered by the macro ``captcha_field(field)`` in ``security/_captcha.html`` (picture, audio,
    "new picture", label, hint, input, hidden challenge id). The challenge is created when the
    form is first rendered; a submitted one is used up by validation, right or wrong, so a form
    shown again after any error carries a new picture. Validation raises ``RateLimited`` past the
    ``captcha.fail`` limit (the error handler answers 429). The typed answer is never echoed back.
    """

    widget = TextInput()

    def __init__(self, label: Any = None, validators: Any = None, **kwargs: Any) -> None:
        render_kw = {"inputmode": "numeric", "autocomplete": "off", "autocapitalize": "none",
                     "spellcheck": "false", "maxlength": str(_MAX_ANSWER)}
        kwargs["render_kw"] = {**render_kw, **(kwargs.get("render_kw") or {})}
        super().__init__(_l("Security code") if label is None else label, validators, **kwargs)
        self.submitted_id: str | None = None
        self._challenge_id: str | None = None

    @property
    def challenge_name(self) -> str:
        """Form name of the hidden input that carries the challenge id."""
        return f"{self.name}-id"

    @property
    def challenge_id(self) -> str:
        """The challenge shown with this rendering (created on first use)."""
        if self._challenge_id is None:
            self._challenge_id = new()
        return self._challenge_id

    @property
    def urls(self) -> dict[str, str]:
        return urls(self.challenge_id)

    @property
    def refresh_url(self) -> str:
        """This page again (GET): without JavaScript, "new picture" reloads it and gets a new challenge."""
        query = request.query_string.decode("latin-1")
        path = "/" + request.path.lstrip("/")  # never "//host": that would leave the site
        return path + (f"?{query}" if query else "")

    def process(self, formdata: Any, data: Any = unset_value, extra_filters: Any = None) -> None:
        super().process(formdata, data, extra_filters=extra_filters)
        if formdata is not None:
            submitted = formdata.get(self.challenge_name)
            self.submitted_id = submitted if isinstance(submitted, str) else None

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.data = str(valuelist[0]) if valuelist else ""

    def _value(self) -> str:
        return ""  # never echo an answer: the next rendering has a new picture anyway

    def pre_validate(self, form: Any) -> None:
        submitted, self.submitted_id, self._challenge_id = self.submitted_id, None, None
        if not normalise(self.data or ""):
            if submitted:
                discard(submitted)
            raise StopValidation(_("Please type the security code."))
        if not check(submitted or "", self.data or ""):
            raise StopValidation(_("The security code was not right. Please try again with the new picture."))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
