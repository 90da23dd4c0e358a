"""The one interface every trusted source implements, and the neutral records it returns (R-S1).

Adapters map each source's own field names onto ``PersonRecord``; nothing downstream knows a
source's format. A record carries a ``NationalId`` (masked when printed), never a bare string.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

import orjson
import requests

from idp.identity.nationalid import InvalidNationalId, NationalId


class AffiliationRecord(NamedTuple):
    """One affiliation as a source reports it. Records are named tuples, not frozen dataclasses: a
    sync builds two per feed record, and a frozen dataclass's ``__init__`` cost three times as much."""

    school_code: str
    role: str  # 學生 / 教師 / 職員
    title: str | None = None  # e.g. 校長, 導師
    grade: int | None = None
    class_no: str | None = None
    class_name: str | None = None
    academic_year: int | None = None
    semester: int | None = None
    active: bool = True

    def as_json(self) -> dict[str, Any]:
        """The mirror's JSON form (written out: a sync calls this once per record)."""
        return {"school_code": self.school_code, "role": self.role, "title": self.title, "grade": self.grade,
                "class_no": self.class_no, "class_name": self.class_name, "academic_year": self.academic_year,
                "semester": self.semester, "active": self.active}

    @property
    def values(self) -> tuple[Any, ...]:
        """What an affiliation row holds besides its key, in ``resolver.AFFILIATION_FIELDS`` order."""
        return (self.title, self.grade, self.class_no, self.class_name, self.academic_year, self.semester,
                "active" if self.active else "left")


class PersonRecord(NamedTuple):
    """What one source says about one person. ``birth_date`` or only ``birth_month_day`` ("MMDD")."""

    source: str
    national_id: NationalId
    name: str
    birth_date: dt.date | None = None
    birth_month_day: str | None = None
    affiliations: tuple[AffiliationRecord, ...] = ()

    @property
    def month_day(self) -> str | None:
        d = self.birth_date
        return f"{d.month:02d}{d.day:02d}" if d else self.birth_month_day  # a quarter of strftime's cost


class Rejected(NamedTuple):
    """A record of a page that could not be read: where it is in the page and why, never what it holds
    (a feed's typing mistake is still somebody's ID number). ``reason`` is ``missing:<field>``,
    ``national_id:<what is wrong>`` (see ``InvalidNationalId``) or ``malformed``."""

    position: int
    reason: str


class Page(NamedTuple):
    """One page of a source's change feed: the records read, the cursor after it, and the records that
    could not be read. A bad record is reported and passed over, so that it cannot stop the feed."""

    records: list[PersonRecord]
    next_cursor: str
    rejected: tuple[Rejected, ...] = ()


@runtime_checkable
class DataSource(Protocol):
    """A trusted source. ``changes`` pages through the source's change feed from an opaque cursor."""

    name: str

    def lookup(self, blind_index: str) -> list[PersonRecord]: ...

    def list_school(self, school_code: str) -> Iterable[PersonRecord]: ...

    def changes(self, cursor: str) -> Page: ...


class SourceError(RuntimeError):
    """A source could not be read (HTTP error, bad file); the message never holds personal data."""


class HttpFeed:
    """Common plumbing: a feed over HTTP(S) with a bearer token, or a dropped file.

    The feed protocol the adapters expect: ``GET {url}/changes?cursor=C&limit=N`` → records plus the
    next cursor; ``GET {url}/schools/{code}`` → that school's records. A source's own raw field names
    are mapped by the adapter's ``to_record``; ``read`` passes over the records it cannot map.
    """

    name: str = "feed"
    batch_size: int = 5000
    # The raw field holding the person's number: a parallel sync routes records by it, so that all
    # of one person's records in a batch go to the same worker.
    id_field: str = ""
    # Raw fields without which a record says nothing usable (checked before mapping).
    required: tuple[str, ...] = ()

    def __init__(self, name: str | None = None, url: str = "", token: str | None = None, token_env: str = "",
                 file: str = "", timeout: float = 30.0, batch_size: int | None = None, **options: Any) -> None:
        self.name = name or self.name
        self.url = url.rstrip("/")
        self.token = token if token is not None else (os.environ.get(token_env, "") if token_env else "")
        self.file = file
        self.timeout = timeout
        self.batch_size = batch_size or self.batch_size
        self.options = options
        self._session = requests.Session()
        self._file_cache: tuple[tuple[str, int, int], list[Any]] | None = None

    def _get(self, path: str, **params: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            resp = self._session.get(f"{self.url}{path}", params=params, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SourceError(f"source {self.name}: cannot reach the feed ({type(exc).__name__})") from exc
        if resp.status_code != 200:
            raise SourceError(f"source {self.name}: feed answered HTTP {resp.status_code}")
        return resp

    def lookup(self, blind_index: str) -> list[PersonRecord]:
        """Sources are keyed by the clear number, so look-ups by blind index use the synced mirror."""
        from idp.sources.resolver import mirrored_records

        return mirrored_records(self.name, blind_index)

    def to_record(self, raw: dict[str, Any]) -> PersonRecord:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self, raws: Sequence[Any], positions: Sequence[int] | None = None
             ) -> tuple[list[PersonRecord], list[Rejected]]:
        """Map raw records; the ones that cannot be mapped come back as ``Rejected`` at their place in
        the page (``positions``, when ``raws`` is a share of a page)."""
        records: list[PersonRecord] = []
        rejected: list[Rejected] = []
        required = self.required
        for i, raw in enumerate(raws):
            try:
                missing = next((f for f in required if raw.get(f) in (None, "")), None)
                if missing is None:
                    records.append(self.to_record(raw))
                    continue
                reason = f"missing:{missing}"
            except InvalidNationalId as exc:
                reason = f"national_id:{exc.reason}"
            except (AttributeError, KeyError, TypeError, ValueError):  # never the message: it may quote a value
                reason = "malformed"
            rejected.append(Rejected(positions[i] if positions is not None else i, reason))
        return records, rejected

    def list_school(self, school_code: str) -> Iterable[PersonRecord]:
        return self.read(self._page(self._get(f"/schools/{school_code}").content)["records"])[0]

    def changes(self, cursor: str) -> Page:
        raws, next_cursor = self.raw_changes(cursor)
        records, rejected = self.read(raws)
        return Page(records, next_cursor, tuple(rejected))

    def raw_changes(self, cursor: str) -> tuple[list[dict[str, Any]], str]:
        """One page of the feed as the source sends it (not yet mapped), and the next cursor."""
        if self.file:
            return self._file_changes(cursor)
        data = self._page(self._get("/changes", cursor=cursor, limit=self.batch_size).content)
        if "next_cursor" not in data:
            raise SourceError(f"source {self.name}: the feed's answer is not a page of records")
        return data["records"], str(data["next_cursor"])

    def _page(self, body: bytes) -> dict[str, Any]:
        """The feed's JSON answer, checked to be ``{"records": [...], ...}``."""
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"source {self.name}: the feed's answer is not a page of records") from exc
        if not isinstance(data, dict) or not isinstance(data.get("records"), list):
            raise SourceError(f"source {self.name}: the feed's answer is not a page of records")
        return data

    def partition_key(self, raw: Any) -> str:
        """What routes a raw record to a worker in a parallel sync (the same person, the same worker)."""
        return str(raw.get(self.id_field, "")).strip().upper() if isinstance(raw, dict) else ""

    def _file_changes(self, cursor: str) -> tuple[list[Any], str]:
        """A dropped file: the cursor is the offset read up to. The file is read once and kept while it
        stays the same (size and modification time), not parsed again for every page."""
        try:
            stat = os.stat(self.file)
            key = (self.file, stat.st_mtime_ns, stat.st_size)
            if self._file_cache is None or self._file_cache[0] != key:
                with open(self.file, "rb") as fh:
                    self._file_cache = (key, self.parse_file(fh.read()))
        except OSError as exc:
            raise SourceError(f"source {self.name}: cannot read the dropped file ({type(exc).__name__})") from exc
        raws = self._file_cache[1]
        start = int(cursor or 0)
        chunk = raws[start:start + self.batch_size]
        return chunk, str(start + len(chunk))

    def parse_file(self, data: bytes) -> list[Any]:
        """A dropped JSON file: a list of raw records (a BOM from Windows tools is allowed)."""
        try:
            raws = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
        except orjson.JSONDecodeError as exc:
            raise SourceError(f"source {self.name}: the dropped file is not JSON") from exc
        if not isinstance(raws, list):
            raise SourceError(f"source {self.name}: the dropped file is not a list of records")
        return raws


def decode_export(data: bytes) -> str:
    """The text of a file exported on Windows: UTF-8 with or without BOM, else Big5 (CP950), the two
    encodings Excel saves Traditional Chinese CSV in. Raises ``UnicodeDecodeError`` for anything else."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp950")


def parse_date(text: str | None) -> dt.date | None:
    """YYYY-MM-DD, YYYYMMDD or ROC YYY/MM/DD / YYYMMDD → date; empty → None."""
    if not text:
        return None
    if len(text) == 10 and text[4] == "-":
        return dt.date.fromisoformat(text)  # what feeds mostly send, at a tenth of the cost
    t = text.strip().replace("/", "-")
    if "-" in t:
        y, m, d = (int(p) for p in t.split("-"))
    elif len(t) == 8:
        y, m, d = int(t[:4]), int(t[4:6]), int(t[6:])
    else:
        y, m, d = int(t[:-4]), int(t[-4:-2]), int(t[-2:])
    if y < 1000:
        y += 1911
    return dt.date(y, m, d)
