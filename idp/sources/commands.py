"""``flask sources sync [NAME]`` and ``flask sources load-roster FILE`` (issue 3 item 5)."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from idp.extensions import db, settings

sources_cli = AppGroup("sources", help="Trusted data sources: sync, rosters.")


@sources_cli.command("sync")
@click.argument("name", required=False)
@click.option("--max-batches", type=int, default=None, help="Stop after this many batches (resume later).")
@click.option("--workers", type=click.IntRange(1, 16), default=None,
              help="Worker processes merging each page (PostgreSQL; SQLite always uses one) "
                   "[default: the sync_workers setting].")
def sync_cmd(name: str | None, max_batches: int | None, workers: int | None) -> None:
    """Pull changes from one configured source, or all; prints counts. Safe to re-run after a crash."""
    from idp.sources.base import SourceError
    from idp.sources.sync import configured_sources, sync

    try:
        sources = configured_sources()
    except SourceError as exc:
        raise click.ClickException(str(exc)) from exc
    if not sources:
        raise click.ClickException("no sources configured: set sources_file (see config/sources.example.toml)")
    if name:
        if name not in sources:
            raise click.ClickException(f"unknown source {name!r}; configured: {', '.join(sources) or 'none'}")
        sources = {name: sources[name]}
    failed = []
    for src in sources.values():
        try:
            t = sync(src, max_batches=max_batches, workers=workers or settings().sync_workers)
        except SourceError as exc:  # the message names the source and the failure, never a record
            db.session.rollback()
            click.echo(f"{src.name}: {exc} (the next sync resumes after the last page stored)", err=True)
            failed.append(src.name)
            continue
        click.echo(f"{src.name}: {t['records']} records in {t['batches']} batches, "
                   f"{t['new_persons']} new persons, {t['conflicts']} conflicts"
                   + (f", {t['left']} left" if t["left"] else "")
                   + (f", {t['rejected']} records not read (see the log)" if t["rejected"] else ""))
    if failed:
        raise click.ClickException(f"not synced: {', '.join(failed)}")


@sources_cli.command("load-roster")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--school", required=True, help="6-character school code.")
@click.option("--year", type=int, required=True, help="ROC academic year, e.g. 114.")
@click.option("--semester", type=click.IntRange(1, 2), required=True)
@click.option("--role", type=click.Choice(["學生", "教師", "職員"]), default="學生", show_default=True)
def load_roster_cmd(file: str, school: str, year: int, semester: int, role: str) -> None:
    """Load a proxy-platform roster CSV (姓名, 使用者識別碼, 生日 MMDD, 年級, 班級, 班級名稱), UTF-8 or Big5."""
    from pathlib import Path

    from idp.sources.base import decode_export
    from idp.sources.proxy_roster import RosterError, load_roster

    try:
        text = decode_export(Path(file).read_bytes())
    except UnicodeDecodeError as exc:
        raise click.ClickException("the roster is neither UTF-8 nor Big5 text: save it from Excel as CSV") from exc
    try:
        upload = load_roster(text, school, year, semester, role, filename=Path(file).name)
    except RosterError as exc:
        db.session.rollback()
        for line, reason in exc.errors:
            click.echo(f"line {line}: {reason}", err=True)
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"roster {upload.id}: {upload.row_count} rows for school {school}, {year}-{semester}, {role}")


@sources_cli.command("demo-load")
@click.option("--persons", type=int, default=200, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
def demo_load_cmd(persons: int, seed: int) -> None:
    """Demo only: synthetic people served by loopback fake feeds, synced through the real adapters."""
    from idp.sources.fake import load_demo_people

    for name, t in load_demo_people(persons, seed).items():
        click.echo(f"{name}: {t['records']} records, {t['new_persons']} new persons")
