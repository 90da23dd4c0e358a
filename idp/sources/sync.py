"""Pull a source's changes into the person tables: idempotent and resumable.

Each batch and the cursor that ends it are committed in one transaction, so a crash loses at most
the batch in flight and the next run resumes from the last committed cursor. Applying a batch twice
leaves the same rows (upserts keyed on source + blind index, person + source + school + role).

A dropped file is a snapshot (issue 12 item 7): the page that ends a new version of the file, the
people that version no longer lists marked as left (``resolver.mark_absent``) and the cursor are
committed together, and a sync reads at most one version (one dropped while it runs waits for the
next sync). ``left`` counts the people no longer current at the source, by a 離校 record or by
missing from a snapshot; a sync where anybody left leaves one audit row with the counts.
"""

from __future__ import annotations

import gc
import importlib
import logging
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from idp.extensions import db
from idp.identity.models import SourceCursor
from idp.security import audit
from idp.sources.base import DataSource, Rejected, SourceError
from idp.sources.resolver import mark_absent, merge_batch

log = logging.getLogger(__name__)


def build_source(spec: dict[str, Any]) -> DataSource:
    """An adapter from its configuration: ``adapter`` is a dotted path ``module.Class``."""
    spec = dict(spec)
    path = spec.pop("adapter", None)
    if not isinstance(path, str) or "." not in path:
        raise SourceError(f"source {spec.get('name', '?')}: 'adapter' must be a dotted path module.Class")
    module, _, cls = path.rpartition(".")
    try:
        factory = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise SourceError(f"source {spec.get('name', '?')}: no adapter {path}") from exc
    try:
        return factory(**spec)
    except TypeError as exc:  # an option the adapter does not take; the message names it, not a secret
        raise SourceError(f"source {spec.get('name', '?')}: {exc}") from exc


def configured_sources() -> dict[str, DataSource]:
    """The sources named in ``sources_file``; a missing or malformed file is a ``SourceError``."""
    from idp.config import CONFIG_DIR
    from idp.extensions import settings

    path = settings().sources_file
    if not path:
        return {}
    full = Path(path) if Path(path).is_absolute() else CONFIG_DIR / path
    try:
        with full.open("rb") as fh:
            specs = tomllib.load(fh).get("source", [])
    except OSError as exc:
        raise SourceError(f"sources_file {full}: cannot be read ({type(exc).__name__})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SourceError(f"sources_file {full}: not valid TOML ({exc})") from exc
    sources: dict[str, DataSource] = {}
    for spec in specs:
        src = build_source(spec)
        if src.name in sources:
            raise SourceError(f"sources_file {full}: two sources are named {src.name!r}")
        sources[src.name] = src
    return sources


COUNTS = ("records", "new_persons", "conflicts", "rejected", "left")


def sync(source: DataSource, max_batches: int | None = None,
         on_batch: Callable[[dict[str, int]], None] | None = None, workers: int = 1) -> dict[str, int]:
    """Read ``source.changes`` from the stored cursor until empty; returns totals.

    Records a source sends that cannot be read are counted as ``rejected`` and logged with their place
    in the feed (never their content), and the sync goes on: one typing mistake in a county's
    export must not hold up everybody after it, day after day. ``left``: people no longer current
    at the source (a 離校 record, or missing from a new snapshot of a dropped file).

    With ``workers`` > 1 (PostgreSQL and an HTTP feed only), each page is split by person across
    that many worker processes, each merging its share on its own connection: the merge is half
    Python and half database work, and one process keeps one core busy at best.
    """
    totals = dict.fromkeys(("batches", *COUNTS), 0)
    snapshot: dict[str, Any] = {}
    row = db.session.get(SourceCursor, source.name)
    cursor = row.cursor if row else ""
    from idp.sources.base import HttpFeed

    if workers > 1 and isinstance(source, HttpFeed) and db.engine.dialect.name == "postgresql":
        _run_parallel(source, cursor, totals, max_batches, on_batch, workers, snapshot)
        _audit_left(source.name, totals, snapshot)
        return totals
    # HTTP feeds: fetch and map page k+1 in a thread while page k is written (the cursor committed is
    # still that of the last page written). Database-backed sources read in this thread only.
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1) if isinstance(source, HttpFeed) else None
    pending = pool.submit(source.changes, cursor) if pool else None
    try:
        _run(source, cursor, totals, max_batches, on_batch, pool, pending, snapshot)
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    _audit_left(source.name, totals, snapshot)
    return totals


def _run(source: DataSource, cursor: str, totals: dict[str, int], max_batches: int | None,
         on_batch: Callable[[dict[str, int]], None] | None, pool: Any, pending: Any,
         snapshot: dict[str, Any]) -> dict[str, int]:
    while max_batches is None or totals["batches"] < max_batches:
        records, new_cursor, rejected = pending.result() if pending else source.changes(cursor)
        pending = None
        if not records and not rejected and new_cursor == cursor:
            break
        ends = _snapshot_ends(source, new_cursor)
        if (pool and (records or rejected) and not ends
                and (max_batches is None or totals["batches"] + 1 < max_batches)):
            pending = pool.submit(source.changes, new_cursor)
        counts = {**merge_batch(source.name, records), "rejected": len(rejected)}
        if ends:
            counts["left"] += _apply_snapshot(source, new_cursor, snapshot)
        _log_rejected(source.name, cursor, rejected)
        _save_cursor(source.name, new_cursor, counts["records"])
        db.session.commit()
        cursor = new_cursor
        totals["batches"] += 1
        for k in COUNTS:
            totals[k] += counts[k]
        if on_batch:
            on_batch(counts)
        if ends or (not records and not rejected):
            break
    log.info("source %s synced: %s", source.name, totals)
    return totals


def _snapshot_ends(source: Any, cursor: str) -> bool:
    """Does this page end a complete version of a dropped file (``HttpFeed.snapshot_ends``)?"""
    ends = getattr(source, "snapshot_ends", None)
    return bool(ends and ends(cursor))


def _apply_snapshot(source: Any, cursor: str, snapshot: dict[str, Any]) -> int:
    """Mark as left whoever the source knew and the version of the file just read to its end does
    not list; in the transaction of that version's last page. Returns how many people left."""
    present = source.snapshot_ids(cursor)
    left = mark_absent(source.name, present, max_left_share=getattr(source, "snapshot_max_left", 0.5))
    snapshot.update(version=cursor.rpartition(":")[0][:12], listed=len(present), absent=left)
    log.info("source %s: snapshot %s applied: %d records listed, %d people no longer listed are left",
             source.name, snapshot["version"], len(present), left)
    return left


def _audit_left(source: str, totals: dict[str, int], snapshot: dict[str, Any]) -> None:
    """One audit row per sync in which people left the source (not one per person): counts only,
    never who (an operator sees it on each person's page)."""
    if not totals["left"]:
        return
    audit.record(audit.SOURCE_LEFT, actor="sync", source=source, records=totals["records"], left=totals["left"],
                 **({"snapshot": snapshot["version"], "snapshot_listed": snapshot["listed"],
                     "snapshot_absent": snapshot["absent"]} if snapshot else {}))
    db.session.commit()


def _run_parallel(source: Any, cursor: str, totals: dict[str, int], max_batches: int | None,
                  on_batch: Callable[[dict[str, int]], None] | None, workers: int,
                  snapshot: dict[str, Any]) -> dict[str, int]:
    """Each page is split by person (``partition_key``) over ``workers`` processes, one per partition
    so that a person's records are applied in page order; the next page is fetched, split and handed
    out while the current one is merged. A page's cursor is committed only once every share of it
    (and of every page before it) is: a crash re-applies at most the two pages in flight, and
    applying a page twice leaves the same rows. The page that ends a snapshot of a dropped file is
    the last one handed out: its absentees are marked here, once every share of every page of that
    version is committed and nothing else is in flight."""
    import collections
    import multiprocessing
    import zlib
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    db.session.close()  # nothing of this session's may be shared with the forked workers
    ctx = multiprocessing.get_context("fork")
    procs = [ProcessPoolExecutor(1, mp_context=ctx, initializer=_worker_init, initargs=(app, source))
             for _ in range(workers)]
    fetcher = None
    try:
        for f in [p.submit(_worker_ready) for p in procs]:  # fork now, before any thread starts
            f.result()
        fetcher = ThreadPoolExecutor(max_workers=1)
        pending = fetcher.submit(source.raw_changes, cursor)
        # Up to two pages in flight: the workers start on page k+1 while the shares of page k finish
        # and its cursor is committed. Each partition's worker takes its shares in page order.
        in_flight: collections.deque[tuple[list[Any], str, str]] = collections.deque()
        submitted = 0
        done = False
        while not done or in_flight:
            if not done and len(in_flight) < 2 and (max_batches is None or submitted < max_batches):
                raws, new_cursor = pending.result()
                if not raws and new_cursor == cursor:
                    done = True
                    continue
                submitted += 1
                last = (not raws or (max_batches is not None and submitted >= max_batches)
                        or _snapshot_ends(source, new_cursor))
                if not last:
                    pending = fetcher.submit(source.raw_changes, new_cursor)
                shares: list[tuple[list[Any], list[int]]] = [([], []) for _ in range(workers)]
                for pos, raw in enumerate(raws):
                    share = shares[zlib.crc32(source.partition_key(raw).encode()) % workers]
                    share[0].append(raw)
                    share[1].append(pos)
                futures = [procs[i].submit(_merge_share, *share) for i, share in enumerate(shares) if share[0]]
                in_flight.append((futures, cursor, new_cursor))
                cursor = new_cursor
                done = last
                continue
            futures, page_start, page_cursor = in_flight.popleft()
            counts = dict.fromkeys(COUNTS, 0)
            rejected: list[Rejected] = []
            for f in futures:
                share_counts, share_rejected = f.result()
                for k, v in share_counts.items():
                    counts[k] += v
                rejected += share_rejected
            counts["rejected"] = len(rejected)
            if _snapshot_ends(source, page_cursor):
                counts["left"] += _apply_snapshot(source, page_cursor, snapshot)
            _log_rejected(source.name, page_start, sorted(rejected))
            _save_cursor(source.name, page_cursor, counts["records"])
            db.session.commit()
            totals["batches"] += 1
            for k in COUNTS:
                totals[k] += counts[k]
            if on_batch:
                on_batch(counts)
    finally:
        if fetcher:
            fetcher.shutdown(wait=True, cancel_futures=True)
        for p in procs:
            p.shutdown(wait=True, cancel_futures=True)
    log.info("source %s synced by %d workers: %s", source.name, workers, totals)
    return totals


_WORKER: dict[str, Any] = {}


def _worker_init(app: Any, source: Any) -> None:
    """In a forked worker: its own app context and its own database connections (the parent's
    pooled connections were copied by the fork and must not be used, nor closed, here)."""
    context = app.app_context()
    context.push()
    db.engine.dispose(close=False)
    # A session of its own: the parent's may be bound to one of the copied connections (the test
    # suite binds it to a connection whose transaction it rolls back).
    db.session = db._make_scoped_session({})
    _WORKER.update(source=source, context=context)
    # Everything inherited from the parent (the app, and in a bench the whole generated population)
    # is long-lived: out of the collector's sight, or each full collection walks it again. Before
    # this, garbage collection took a third of a worker's time.
    gc.freeze()


def _worker_ready() -> bool:
    return True


def _merge_share(raws: list[Any], positions: list[int]) -> tuple[dict[str, int], list[Rejected]]:
    source = _WORKER["source"]
    records, rejected = source.read(raws, positions)
    try:
        counts = merge_batch(source.name, records)
        db.session.commit()
    except BaseException:
        db.session.rollback()
        raise
    return counts, rejected


def _log_rejected(source: str, cursor: str, rejected: Iterable[Rejected]) -> None:
    """Where each unreadable record is, so the source's people can find and mend it; never its content."""
    for r in rejected:
        log.warning("source %s: record %d of the page after cursor %r not read (%s)", source, r.position,
                    cursor, r.reason)


def _save_cursor(source: str, cursor: str, n: int) -> None:
    t = SourceCursor.__table__
    done = db.session.execute(sa.update(t).where(t.c.source == source).values(
        cursor=cursor, records_total=t.c.records_total + n, updated_at=sa.func.now())).rowcount
    if not done:
        db.session.execute(sa.insert(t).values(source=source, cursor=cursor, records_total=n))
