"""Identity scale bench (issue 3 item 8): load N persons, time a county sync and look-ups.

    nice -n 10 .venv/bin/python bench/identity_bench.py [--persons 3500000] [--feed 200000] [--reuse]

Uses a dedicated PostgreSQL database (``bench_identity``, created and migrated here). Loading uses
COPY; the county sync goes through the real HTTP adapter against a loopback fake feed and the same
``sync`` as production; look-ups call the resolver by blind index. Prints a markdown table.

A sync changes the database it measures, so every run starts from a freshly loaded one. Loading
3.5 M persons takes about four minutes: with ``--reuse`` the freshly loaded database is kept as a
template (``bench_identity_loaded``, tagged with the persons, the seed and the latest migration) and
later runs with the same ``--persons``, ``--seed`` and schema copy it (``CREATE DATABASE … TEMPLATE``,
about 30 s) instead of loading.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sqlalchemy as sa

from idp import create_app
from idp.extensions import db
from idp.identity import protection
from idp.identity.nationalid import NationalId
from idp.sources import generator as gen
from idp.sources.county_sis import CountySIS
from idp.sources.fake import feed_app
from idp.sources.resolver import identity
from idp.sources.sync import sync

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/bench_identity"
TABLES = ("affiliation", "source_record", "source_cursor", "identity_conflict", "person")


def _admin(url: str) -> sa.Engine:
    return sa.create_engine(sa.engine.make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")


def template_of(url: str) -> str:
    return sa.engine.make_url(url).database + "_loaded"


def clone_template(url: str, tag: str) -> bool:
    """Recreate the bench database as a copy of the loaded template, if one with this tag exists."""
    name, template = sa.engine.make_url(url).database, template_of(url)
    eng = _admin(url)
    try:
        with eng.connect() as conn:
            found = conn.execute(sa.text("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                         "WHERE datname = :t"), {"t": template}).scalar()
            if found != tag:
                return False
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY'))
    finally:
        eng.dispose()
    return True


def save_template(url: str, tag: str) -> None:
    """Keep the freshly loaded database (before any sync) as the template later runs copy."""
    name, template = sa.engine.make_url(url).database, template_of(url)
    eng = _admin(url)
    try:
        with eng.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{template}" TEMPLATE "{name}" STRATEGY FILE_COPY'))
            conn.execute(sa.text(f"COMMENT ON DATABASE \"{template}\" IS '{tag}'"))
    finally:
        eng.dispose()


def setup(url: str, drop: bool = False):  # type: ignore[no-untyped-def]
    import flask_migrate

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import ensure_database  # the same helper the tests use

    if drop:  # a fresh database: an earlier run's sync left dead rows and bloated indexes behind
        eng = _admin(url)
        with eng.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.engine.make_url(url).database}" WITH (FORCE)'))
        eng.dispose()
    ensure_database(url)
    app = create_app({"IDP_CONFIG": "testing", "database_url": url, "redis_url": "", "log_level": "WARNING"})
    with app.app_context():
        flask_migrate.upgrade()
    return app


def load(n: int, seed: int, today: dt.date) -> tuple[list[str], list[gen.SyntheticPerson]]:
    """COPY n persons (+ their source mirror and affiliation) from the generator; returns blind indexes
    and the first people (a county's worth is re-fed to the sync)."""
    prot = protection.protector()
    year, sem = 114, 1
    now = dt.datetime.now(dt.UTC)
    raw = db.session.connection().connection.driver_connection
    with raw.cursor() as cur:
        cur.execute("TRUNCATE " + ", ".join(TABLES) + " RESTART IDENTITY CASCADE")
        # Indexes and constraints are rebuilt after the load: much faster than maintaining them row by row.
        cur.execute("SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                    "WHERE conrelid IN ('person'::regclass, 'affiliation'::regclass, 'source_record'::regclass) "
                    "AND contype IN ('u', 'f') ORDER BY contype DESC")
        constraints = cur.fetchall()
        cur.execute("SELECT indexdef, indexname FROM pg_indexes WHERE tablename IN ('person', 'affiliation', "
                    "'source_record') AND indexname NOT LIKE 'pk_%' AND indexname NOT LIKE 'uq_%'")
        indexes = cur.fetchall()
        for table, name, _ in reversed(constraints):
            cur.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for _, name in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        bis: list[str] = []
        keep: list[gen.SyntheticPerson] = []
        with cur.copy("COPY person (id, blind_index, national_id_ciphertext, name, birth_date, birth_month_day, "
                      "created_at, updated_at) FROM STDIN") as cp_p:
            for i, p in enumerate(gen.population(n, seed=seed, today=today), start=1):
                nid = NationalId.parse(p.national_id)
                bi = prot.blind_index(nid)
                bis.append(bi)
                if len(keep) < 200_000 and p.role == "學生":
                    keep.append(p)
                cp_p.write_row((i, bi, prot.encrypt(nid), p.name, p.birth_date, p.birth_date.strftime("%m%d"),
                                now, now))
        # One COPY at a time per connection: a second pass of the (deterministic) generator.
        with cur.copy("COPY affiliation (person_id, source, school_code, role, title, grade, class_no, "
                      "class_name, academic_year, semester, status, first_seen, last_seen) FROM STDIN") as cp_a:
            for i, p in enumerate(gen.population(n, seed=seed, today=today), start=1):
                cp_a.write_row((i, "county-63", p.school_code, p.role, p.title, p.grade, p.class_no, p.class_name,
                                year, sem, "active", now, now))
        # Every person is known to the county source: its mirror row, as a sync would have left it
        # (a pupil's with the keyed hash of their county account, R-L2).
        with cur.copy("COPY source_record (source, blind_index, name, birth_date, birth_month_day, affiliations, "
                      "county_account_index, seen_at) FROM STDIN") as cp_s:
            for bi, p in zip(bis, gen.population(n, seed=seed, today=today), strict=True):
                aff = [{"school_code": p.school_code, "role": p.role, "title": p.title, "grade": p.grade,
                        "class_no": p.class_no, "class_name": p.class_name, "academic_year": year,
                        "semester": sem, "active": True}]
                account = gen.county_account(p)
                cp_s.write_row(("county-63", bi, p.name, p.birth_date, p.birth_date.strftime("%m%d"),
                                json.dumps(aff, ensure_ascii=False, separators=(",", ":")),
                                prot.county_account_index("63", account) if account else None, now))
        cur.execute("SELECT setval('person_id_seq', (SELECT max(id) FROM person))")
        for table, name, definition in constraints:
            cur.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
        for definition, _ in indexes:
            cur.execute(definition)
        cur.execute("ANALYZE")
    db.session.commit()
    return bis, keep


def settle() -> float:
    """Checkpoint and flush the disk before measuring: a load or a copy leaves gigabytes of dirty pages,
    and the kernel writing them back while the sync runs slowed it by up to a third."""
    import os

    t0 = time.perf_counter()
    db.session.execute(sa.text("CHECKPOINT"))
    db.session.commit()
    os.sync()
    return time.perf_counter() - t0


def replay(n: int, seed: int, today: dt.date) -> tuple[list[str], list[gen.SyntheticPerson]]:
    """What ``load`` returns, without loading: the generator is deterministic for a seed."""
    prot = protection.protector()
    bis: list[str] = []
    keep: list[gen.SyntheticPerson] = []
    for p in gen.population(n, seed=seed, today=today):
        bis.append(prot.blind_index(NationalId.parse(p.national_id)))
        if len(keep) < 200_000 and p.role == "學生":
            keep.append(p)
    return bis, keep


@contextlib.contextmanager
def serve_elsewhere(app):  # type: ignore[no-untyped-def]
    """The fake county feed in a forked process of its own, as a real county system is another
    machine: its JSON encoding must not share this process's GIL with the sync being measured."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app)
    proc = multiprocessing.get_context("fork").Process(target=server.serve_forever, daemon=True)
    proc.start()
    url = f"http://127.0.0.1:{server.server_port}"
    server.server_close()
    try:
        yield url
    finally:
        proc.terminate()
        proc.join(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--persons", type=int, default=3_500_000)
    ap.add_argument("--feed", type=int, default=200_000)
    ap.add_argument("--lookups", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=2, help="sync worker processes (1: all in this process)")
    ap.add_argument("--database-url", default=DEFAULT_URL)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--reuse", action="store_true",
                    help="copy the database loaded by an earlier --reuse run (same --persons, --seed) instead of "
                         "loading again; keep this run's load for the next one")
    args = ap.parse_args()
    today = dt.date(2025, 9, 1)
    head = sorted((Path(__file__).resolve().parent.parent / "migrations" / "versions").glob("0*.py"))[-1].stem
    tag = f"identity bench: {args.persons} persons, seed {args.seed}, schema {head}"
    t0 = time.perf_counter()
    cloned = args.reuse and clone_template(args.database_url, tag)
    app = setup(args.database_url, drop=not cloned)
    rows = []
    with app.app_context():
        if cloned:
            bis, people = replay(args.persons, args.seed, today)
            rows.append(("copy of the loaded database", f"{args.persons:,}", f"{time.perf_counter() - t0:.1f} s", "–"))
        else:
            t0 = time.perf_counter()
            bis, people = load(args.persons, args.seed, today)
            load_s = time.perf_counter() - t0
            rows.append(("load (COPY) persons", f"{args.persons:,}", f"{load_s:.1f} s",
                         f"{args.persons / load_s:,.0f} persons/s"))
            if args.reuse:
                db.session.remove()
                db.engine.dispose()
                save_template(args.database_url, tag)

        rows.append(("checkpoint + flush to disk before measuring", "", f"{settle():.1f} s", "–"))

        # A county feed: mostly known students (a tenth moved class/school), 5 % new ones.
        rng = random.Random(args.seed)
        n_new = args.feed // 20
        known = people[: args.feed - n_new]
        feed = []
        for p in known:
            r = gen.county_raw(p, today)
            if rng.random() < 0.1:
                r["sch_code"], r["class_title"] = "639999", "轉入班"
            feed.append(r)
        feed += [gen.county_raw(p, today) for p in gen.population(n_new, seed=args.seed + 1, today=today)]
        fapp = feed_app(feed, "bench-token", "sch_code")
        with serve_elsewhere(fapp) as url:
            src = CountySIS(url=url, token="bench-token", county="63", batch_size=args.batch)
            t0 = time.perf_counter()
            totals = sync(src, workers=args.workers)
            sync_s = time.perf_counter() - t0
        workers = f"{args.workers} worker" + ("s" if args.workers > 1 else "")
        rows.append((f"county sync (HTTP JSON → persons, {workers})", f"{totals['records']:,}",
                     f"{sync_s:.1f} s",
                     f"{totals['records'] / sync_s:,.0f} records/s (target ≥ 20,000)"))

        sample = random.Random(1).sample(bis, min(args.lookups, len(bis)))
        for bi in sample[:200]:  # warm-up
            identity(bi)
            db.session.rollback()
        lat = []
        for bi in sample:
            t = time.perf_counter()
            assert identity(bi) is not None
            lat.append((time.perf_counter() - t) * 1000)
            db.session.rollback()
        lat.sort()
        p50, p99 = statistics.median(lat), lat[int(len(lat) * 0.99) - 1]
        rows.append(("resolver look-up by blind index", f"{len(lat):,}", f"p50 {p50:.2f} ms",
                     f"p99 {p99:.2f} ms (target < 5 ms)"))
        n_person = db.session.scalar(sa.text("SELECT count(*) FROM person"))
    print(f"\nIdentity bench: {n_person:,} persons in PostgreSQL ({args.database_url.rsplit('/', 1)[-1]})\n")
    print("| step | n | time | rate |")
    print("|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
