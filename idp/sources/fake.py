"""Fake feed servers on loopback: each plays one source with its own raw field names.

``feed_app(raws, token, school_field)`` serves ``/changes?cursor=&limit=`` (cursor = offset;
``format=csv`` gives the county CSV export with the next cursor in ``X-Next-Cursor``) and
``/schools/<code>``, and refuses requests without the bearer token. ``serve(app)`` runs it with
werkzeug on 127.0.0.1, port 0, in a thread, for tests and the demo.
"""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, abort, jsonify, request
from werkzeug.serving import make_server

from idp.sources.county_sis import CSV_COLUMNS


def feed_app(raws: list[dict[str, Any]], token: str, school_field: str) -> Flask:
    app = Flask("fake_feed")
    app.config["RAWS"] = raws  # tests may append/replace to simulate changes

    @app.before_request
    def _auth() -> None:
        if request.headers.get("Authorization") != f"Bearer {token}":
            abort(401)

    @app.get("/changes")
    def changes() -> Any:
        data = app.config["RAWS"]
        start = int(request.args.get("cursor") or 0)
        limit = int(request.args.get("limit") or 1000)
        chunk = data[start:start + limit]
        nxt = str(start + len(chunk))
        if request.args.get("format") == "csv":
            out = io.StringIO()
            reverse = {v: k for k, v in CSV_COLUMNS.items()}
            w = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS))
            w.writeheader()
            for r in chunk:
                w.writerow({reverse[k]: ("" if v is None else v) for k, v in r.items() if k in reverse})
            return Response(out.getvalue(), mimetype="text/csv", headers={"X-Next-Cursor": nxt})
        return jsonify(records=chunk, next_cursor=nxt)

    @app.get("/schools/<code>")
    def school(code: str) -> Any:
        def at(r: dict[str, Any]) -> bool:
            if school_field == "posts":
                return any(p["orgCode"] == code for p in r["posts"])
            return r[school_field] == code
        return jsonify(records=[r for r in app.config["RAWS"] if at(r)])

    return app


SCHOOL_FIELDS = {"county": "sch_code", "k12": "schno", "webhr": "posts"}


@contextmanager
def serve(app: Flask) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1:<free port> in a thread; yields its base URL; stops it afterwards."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def load_demo_people(n: int = 200, seed: int = 1, extra: list[Any] | None = None,
                     schools: list[tuple[str, str]] | None = None) -> dict[str, dict[str, int]]:
    """For the demo: generate ``n`` people (plus ``extra`` ``SyntheticPerson``s, e.g. the demo student),
    serve them from fake feeds on loopback and sync them through the real HTTP adapters. Pupils up to
    grade 9 go to their county's feed (``county-01`` for 新北市 …, each with its pupils' county
    accounts, ``generator.county_account``), senior-high grades to the K-12 registry, staff to webHR."""
    from idp.sources import generator as gen
    from idp.sources.county_sis import CountySIS
    from idp.sources.k12_registry import K12Registry
    from idp.sources.sync import sync
    from idp.sources.webhr import WebHR

    people = list(gen.population(n, seed=seed, schools=schools)) + list(extra or [])
    token = "demo-feed-token"
    feeds: dict[str, tuple[list[dict[str, Any]], str, Any]] = {}
    for county in sorted({p.county for p in people if p.role == "學生" and (p.grade or 0) <= 9}):
        feeds[f"county-{county}"] = (
            [gen.county_raw(p) for p in people if p.role == "學生" and (p.grade or 0) <= 9 and p.county == county],
            "sch_code", lambda url, county=county: CountySIS(url=url, token=token, county=county))
    feeds.update({
        "k12": ([gen.k12_raw(p) for p in people if p.role == "學生" and (p.grade or 0) > 9], "schno",
                lambda url: K12Registry(url=url, token=token)),
        "webhr": ([gen.webhr_raw(p) for p in people if p.role != "學生"], "posts",
                  lambda url: WebHR(url=url, token=token)),
    })
    totals = {}
    for name, (raws, field, make) in feeds.items():
        with serve(feed_app(raws, token, field)) as url:
            totals[name] = sync(make(url))
    return totals
