"""The one interface every trusted source implements, and the neutral records it returns (R-S1).

Adapters map each source's own field names onto ``PersonRecord``; nothing downstream knows a
source's format. A record carries a ``NationalId`` (masked when printed), never a bare string, and
a county account (``CountyAccount``, masked too) that the resolver keeps only as a keyed hash.

A dropped file is a snapshot (issue 12 item 7): each new version of the file (by content hash,
which the cursor records) is read whole, an unchanged one yields nothing, and once a version has
been read to its end the sync marks everybody that source knows but the version no longer lists
as left (``HttpFeed.snapshot_ends`` / ``snapshot_ids``). HTTP feeds are change feeds: their
cursor is the source's own, and nobody is ever left for not being in a page.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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


class CountyAccount(NamedTuple):
    """A pupil's account at their county's education network (縣市帳號, R-L2): the county's code in
    the school directory (``"01"`` = 新北市) and the account as the county exported it. It is what a
    county login is matched by, so it is masked when printed (a record may end up in a log) and
    stored only as ``protection.county_account_index``."""

    county: str
    account: str

    def __repr__(self) -> str:
        return f"CountyAccount({self.county!r}, '***')"

    __str__ = __repr__


class PersonRecord(NamedTuple):
    """What one source says about one person. ``birth_date`` or only ``birth_month_day`` ("MMDD").
    ``county_account``: the person's account at the county, from a county source only."""

    source: str
    national_id: NationalId
    name: str
    birth_date: dt.date | None = None
    birth_month_day: str | None = None
    affiliations: tuple[AffiliationRecord, ...] = ()
    county_account: CountyAccount | None = None

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
    With ``file``, a dropped export instead: a snapshot of everybody at the source (module docstring).
    """

    name: str = "feed"
    batch_size: int = 5000
    # The raw field holding the person's number: a parallel sync routes records by it, so that all
    # of one person's records in a batch go to the same worker.
    id_field: str = ""
    # Raw fields without which a record says nothing usable (checked before mapping).
    required: tuple[str, ...] = ()

    def __init__(self, name: str | None = None, url: str = "", token: str | None = None, token_env: str = "",
                 file: str = "", timeout: float = 30.0, batch_size: int | None = None,
                 snapshot_max_left: float = 0.5, **options: Any) -> None:
        self.name = name or self.name
        if not 0 < snapshot_max_left <= 1:
            raise SourceError(f"source {self.name}: snapshot_max_left must be a share above 0 and at most 1")
        # A snapshot of a dropped file that would make more than this share of the people it lists and
        # the source knew leave at once is refused (``resolver.mark_absent``).
        self.snapshot_max_left = snapshot_max_left
        self.url = url.rstrip("/")
        self.token = token if token is not None else (os.environ.get(token_env, "") if token_env else "")
        self.file = file
        self.timeout = timeout
        self.batch_size = batch_size or self.batch_size
        self.options = options
        self._session = requests.Session()
        # (path, mtime, size) of the version read, its content hash and its records
        self._file_cache: tuple[tuple[str, int, int], str, list[Any]] | None = None

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
        """A dropped file is a snapshot: the cursor is ``<content hash>:<offset read up to>``. A new
        version (another hash; also a cursor from before snapshots, a bare offset) is read from its
        first record, the version the cursor names goes on from its offset, and a version read to
        its end yields nothing more, however often it is dropped again or touched."""
        digest, raws = self._file_version()
        version, _, offset = cursor.rpartition(":")
        start = int(offset) if version == digest and offset.isdigit() else 0
        chunk = raws[start:start + self.batch_size]
        return chunk, f"{digest}:{start + len(chunk)}"

    def _file_version(self) -> tuple[str, list[Any]]:
        """The dropped file's content hash and records. Read and parsed once per version, and kept
        while the file's size and modification time stay the same (not parsed again for every page).
        A file that holds no records is refused: it says nothing about who is at the source, so it
        must not make everybody a leaver."""
        try:
            stat = os.stat(self.file)
            key = (self.file, stat.st_mtime_ns, stat.st_size)
            cache = self._file_cache
            if cache is None or cache[0] != key:
                with open(self.file, "rb") as fh:
                    data = fh.read()
                raws = self.parse_file(data) if data.strip(b"\xef\xbb\xbf \t\r\n") else []
                if not raws:
                    raise SourceError(f"source {self.name}: the dropped file holds no records; it is not taken "
                                      "as a snapshot and nobody is marked as left")
                cache = self._file_cache = (key, hashlib.sha256(data).hexdigest(), raws)
        except OSError as exc:
            raise SourceError(f"source {self.name}: cannot read the dropped file ({type(exc).__name__})") from exc
        return cache[1], cache[2]

    def snapshot_ends(self, cursor: str) -> bool:
        """Does ``cursor`` end a complete, successfully parsed version of a dropped file (the page
        before it was the version's last)? Always False for an HTTP feed. Only the version the pages
        were cut from counts: one replaced before it was read to its end is never a snapshot (the
        newer one will be, at the next sync)."""
        return self._ended_version(cursor) is not None

    def snapshot_ids(self, cursor: str) -> list[NationalId]:
        """Everybody the version of the file that ``cursor`` ends lists (``snapshot_ends``): the
        number of every record whose number can be read, the records otherwise rejected included (a
        missing name must not make a pupil a leaver). Empty when ``cursor`` ends no snapshot."""
        ids: list[NationalId] = []
        field = self.id_field
        for raw in self._ended_version(cursor) or ():
            try:
                ids.append(NationalId.parse(str(raw.get(field) or "")))
            except (InvalidNationalId, AttributeError):
                continue
        return ids

    def _ended_version(self, cursor: str) -> list[Any] | None:
        """The records of the version of the dropped file that ``cursor`` ends, else None."""
        cache = self._file_cache  # the prefetching thread may replace it: read it once
        if not self.file or cache is None:
            return None
        version, _, offset = cursor.rpartition(":")
        return cache[2] if version == cache[1] and offset == str(len(cache[2])) else None

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
