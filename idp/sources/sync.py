"""Pull a source's changes into the person tables: idempotent and resumable.

Each batch and the cursor that ends it are committed in one transaction, so a crash loses at most
the batch in flight and the next run resumes from the last committed cursor. Applying a batch twice
leaves the same rows (upserts keyed on source + blind index, person + source + school + role).
"""

from __future__ import annotations

import importlib
import logging
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from idp.extensions import db
from idp.identity.models import SourceCursor
from idp.sources.base import DataSource
from idp.sources.resolver import merge_batch

log = logging.getLogger(__name__)


def build_source(spec: dict[str, Any]) -> DataSource:
    """An adapter from its configuration: ``adapter`` is a dotted path ``module.Class``."""
    spec = dict(spec)
    module, _, cls = spec.pop("adapter").rpartition(".")
    return getattr(importlib.import_module(module), cls)(**spec)


def configured_sources() -> dict[str, DataSource]:
    from idp.config import CONFIG_DIR
    from idp.extensions import settings

    path = settings().sources_file
    if not path:
        return {}
    full = Path(path) if Path(path).is_absolute() else CONFIG_DIR / path
    with full.open("rb") as fh:
        specs = tomllib.load(fh).get("source", [])
    sources = [build_source(s) for s in specs]
    return {s.name: s for s in sources}


def sync(source: DataSource, max_batches: int | None = None,
         on_batch: Callable[[dict[str, int]], None] | None = None) -> dict[str, int]:
    """Read ``source.changes`` from the stored cursor until empty; returns totals."""
    totals = {"batches": 0, "records": 0, "new_persons": 0, "conflicts": 0}
    row = db.session.get(SourceCursor, source.name)
    cursor = row.cursor if row else ""
    # HTTP feeds: fetch and map page k+1 in a thread while page k is written (the cursor committed is
    # still that of the last page written). Database-backed sources read in this thread only.
    from concurrent.futures import ThreadPoolExecutor

    from idp.sources.base import HttpFeed

    pool = ThreadPoolExecutor(max_workers=1) if isinstance(source, HttpFeed) else None
    pending = pool.submit(source.changes, cursor) if pool else None
    try:
        return _run(source, cursor, totals, max_batches, on_batch, pool, pending)
    finally:
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)


def _run(source: DataSource, cursor: str, totals: dict[str, int], max_batches: int | None,
         on_batch: Callable[[dict[str, int]], None] | None, pool: Any, pending: Any) -> dict[str, int]:
    while max_batches is None or totals["batches"] < max_batches:
        records, new_cursor = pending.result() if pending else source.changes(cursor)
        pending = None
        if not records and new_cursor == cursor:
            break
        if pool and records and (max_batches is None or totals["batches"] + 1 < max_batches):
            pending = pool.submit(source.changes, new_cursor)
        counts = merge_batch(source.name, records)
        _save_cursor(source.name, new_cursor, counts["records"])
        db.session.commit()
        cursor = new_cursor
        totals["batches"] += 1
        for k in ("records", "new_persons", "conflicts"):
            totals[k] += counts[k]
        if on_batch:
            on_batch(counts)
        if not records:
            break
    log.info("source %s synced: %s", source.name, totals)
    return totals


def _save_cursor(source: str, cursor: str, n: int) -> None:
    t = SourceCursor.__table__
    done = db.session.execute(sa.update(t).where(t.c.source == source).values(
        cursor=cursor, records_total=t.c.records_total + n, updated_at=sa.func.now())).rowcount
    if not done:
        db.session.execute(sa.insert(t).values(source=source, cursor=cursor, records_total=n))
