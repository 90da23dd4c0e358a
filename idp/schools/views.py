"""JSON endpoints behind the cascading school pickers (R-S5, R-C2, R-C4).

``GET /api/schools/counties`` → ``/api/schools/districts?county=01`` →
``/api/schools/levels?county=01&district=7`` → ``/api/schools?county=01&district=7&level=國小``;
``/api/schools/<code>`` for one school. Public (the apply page needs them before sign-in),
read-only and cacheable; a missing or malformed parameter is a 400 that names it.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify, request

from idp.errors import IdpError, NotFound
from idp.schools import services
from idp.schools.models import LEVELS

bp = Blueprint("schools", __name__, url_prefix="/api/schools")


def _cached(payload: Any) -> Response:
    resp = jsonify(payload)
    resp.headers["Cache-Control"] = "public, max-age=300"
    return resp


def _county() -> str:
    county = request.args.get("county", "")
    if not re.fullmatch(r"\d{2}", county):
        raise IdpError("county must be a two-digit county code, e.g. 01", code="invalid_request")
    return county


def _district() -> int | None:
    value = request.args.get("district")
    if value in (None, ""):
        return None
    if not value.isdigit() or len(value) > 9:
        raise IdpError("district must be a district id from /api/schools/districts", code="invalid_request")
    return int(value)


def _level() -> str | None:
    value = request.args.get("level") or None
    if value is not None and value not in LEVELS:
        raise IdpError(f"level must be one of {', '.join(LEVELS)}", code="invalid_request")
    return value


@bp.get("/counties")
def counties() -> Response:
    return _cached({"counties": services.counties()})


@bp.get("/districts")
def districts() -> Response:
    county = _county()
    return _cached({"county": county, "districts": services.districts(county)})


@bp.get("/levels")
def levels() -> Response:
    return _cached({"levels": services.levels(_county(), _district())})


@bp.get("")
def schools() -> Response:
    found = services.schools(_county(), _district(), _level())
    return _cached({"schools": [{"code": s.code, "name": s.name, "level": s.level} for s in found]})


@bp.get("/<code>")
def school(code: str) -> Response:
    found = services.get_school(code.upper()) if re.fullmatch(r"[0-9A-Za-z]{6}", code) else None
    if found is None:
        raise NotFound("no school with this code")
    return _cached(services.as_json(found))
