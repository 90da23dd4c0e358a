"""Fake feed servers over real HTTP on loopback, filled from the deterministic generator."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask

from idp.sources import generator as gen
from idp.sources.fake import feed_app, serve

TOKEN = "test-feed-token"


@dataclass
class Feed:
    url: str
    app: Flask
    raws: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="session")
def people() -> list[gen.SyntheticPerson]:
    return list(gen.population(60, seed=7, n_schools=3, today=dt.date(2025, 9, 1)))


@pytest.fixture
def feeds(people: list[gen.SyntheticPerson]) -> Iterator[dict[str, Feed]]:
    students = [p for p in people if p.role == "學生"]
    staff = [p for p in people if p.role != "學生"]
    data = {"county": [gen.county_raw(p) for p in students[:30]],
            "k12": [gen.k12_raw(p) for p in students[30:]],
            "webhr": [gen.webhr_raw(p) for p in staff]}
    school_field = {"county": "sch_code", "k12": "schno", "webhr": "posts"}
    out: dict[str, Feed] = {}
    ctxs = []
    for name, raws in data.items():
        app = feed_app(list(raws), TOKEN, school_field[name])
        ctx = serve(app)
        out[name] = Feed(ctx.__enter__(), app, app.config["RAWS"])
        ctxs.append(ctx)
    try:
        yield out
    finally:
        for ctx in ctxs:
            ctx.__exit__(None, None, None)
