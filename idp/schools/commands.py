"""``flask --app wsgi schools load FILE|--sample`` and ``schools list`` (R-S5)."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from idp.extensions import db

schools_cli = AppGroup("schools", help="The school directory (county → district → level → school).")
SAMPLE = Path(__file__).resolve().parent / "data" / "sample_schools.csv"


@schools_cli.command("load")
@click.argument("file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default=None,
              help="csv (header line, English or Chinese column names) or json (the ministry's public "
                   "directory); default: from the file name.")
@click.option("--sample", is_flag=True, help="Load the bundled sample directory (several counties, for the demo).")
def load(file: Path | None, fmt: str | None, sample: bool) -> None:
    """Add or update schools from a file; bad lines are listed and skipped, nothing stored is removed."""
    from idp.schools.loaders import DirectoryError, load_file

    if sample == (file is not None):
        raise click.UsageError("give a FILE or --sample")
    path = SAMPLE if sample else file
    assert path is not None
    fmt = fmt or ("json" if path.suffix.lower() == ".json" else "csv")
    try:
        report = load_file(path.read_text(encoding="utf-8-sig"), fmt)
    except (DirectoryError, UnicodeDecodeError) as exc:
        db.session.rollback()
        raise click.ClickException(f"{path.name}: {exc}") from exc
    db.session.commit()
    for line, reason in report.errors:
        click.echo(f"{path.name}:{line}: {reason}", err=True)
    click.echo(f"schools: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
               f"{len(report.errors)} skipped")


@schools_cli.command("list")
@click.option("--county", help="Two-digit county code.")
def list_(county: str | None) -> None:
    """Print the directory (code, county, district, level, name)."""
    import sqlalchemy as sa

    from idp.schools.models import School

    q = sa.select(School).order_by(School.county_code, School.code)
    if county:
        q = q.where(School.county_code == county)
    for s in db.session.scalars(q):
        click.echo(f"{s.code}  {s.county.name}  {s.district.name if s.district else '-':<6} {s.level:<4} "
                   f"{s.ownership} {s.name}{'' if s.active else '  (closed)'}")
