"""County student-affairs systems (學務系統): one instance per county, JSON or CSV export.

Raw JSON fields: ``sid`` (ID), ``stu_name``, ``birthday`` (YYYY-MM-DD), ``sch_code``, ``grade``,
``class_no``, ``class_title``, ``status`` (在學 / 離校), ``acad_year``, ``term`` and, optionally,
``county_account`` (the pupil's account at the county's education network, 縣市帳號). The CSV export
has the columns 身分證號, 姓名, 生日, 學校代碼, 年級, 班級, 班級名稱, 狀態, 學年度, 學期 and, optionally, 縣市帳號.

The ``county`` option is the county's two-digit code in the school directory (``"01"`` = 新北市): a
county login (R-L2) looks a pupil up by that code and the account, so a county source without it
ignores the accounts it sends. A dropped export is a snapshot (see ``base``).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from idp.identity.nationalid import NationalId
from idp.sources.base import (
    AffiliationRecord,
    CountyAccount,
    HttpFeed,
    PersonRecord,
    SourceError,
    decode_export,
    parse_date,
)

CSV_COLUMNS = {"身分證號": "sid", "姓名": "stu_name", "生日": "birthday", "學校代碼": "sch_code", "年級": "grade",
               "班級": "class_no", "班級名稱": "class_title", "狀態": "status", "學年度": "acad_year",
               "學期": "term", "縣市帳號": "county_account"}


def _int(v: Any) -> int | None:
    return int(v) if v not in (None, "") else None


class CountySIS(HttpFeed):
    name = "county"
    id_field = "sid"
    required = ("sid", "stu_name", "sch_code")

    def __init__(self, *args: Any, county: str = "", format: str = "json", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.county = county
        self.format = format
        if self.name == "county" and county:
            self.name = f"county-{county}"

    def to_record(self, raw: dict[str, Any]) -> PersonRecord:
        aff = AffiliationRecord(
            school_code=raw["sch_code"], role="學生", grade=_int(raw.get("grade")),
            class_no=str(raw.get("class_no") or "") or None, class_name=raw.get("class_title") or None,
            academic_year=_int(raw.get("acad_year")), semester=_int(raw.get("term")),
            active=raw.get("status", "在學") == "在學")
        account = raw.get("county_account")
        account = str(account).strip() if account not in (None, "") and self.county else None
        return PersonRecord(source=self.name, national_id=NationalId.parse(raw["sid"]), name=raw["stu_name"],
                            birth_date=parse_date(raw.get("birthday")), affiliations=(aff,),
                            county_account=CountyAccount(self.county, account) if account else None)

    def raw_changes(self, cursor: str) -> tuple[list[dict[str, Any]], str]:
        if self.format != "csv" or self.file:
            return super().raw_changes(cursor)
        resp = self._get("/changes", cursor=cursor, limit=self.batch_size, format="csv")
        if "X-Next-Cursor" not in resp.headers:
            raise SourceError(f"source {self.name}: the CSV export came without its X-Next-Cursor header")
        return _csv_rows(resp.text), resp.headers["X-Next-Cursor"]

    def parse_file(self, data: bytes) -> list[Any]:
        """A dropped export: JSON, or with ``format = "csv"`` the CSV export as Excel on Windows saves it,
        UTF-8 (with or without BOM) or Big5 (CP950)."""
        if self.format != "csv":
            return super().parse_file(data)
        try:
            text = decode_export(data)
        except UnicodeDecodeError as exc:
            raise SourceError(f"source {self.name}: the dropped CSV is neither UTF-8 nor Big5") from exc
        rows = _csv_rows(text)
        if rows and "sid" not in rows[0]:
            raise SourceError(f"source {self.name}: the dropped CSV has no 身分證號 column")
        return rows


def _csv_rows(text: str) -> list[dict[str, Any]]:
    """The CSV export's rows under the JSON field names (columns named as in ``CSV_COLUMNS``)."""
    return [{CSV_COLUMNS.get(k.strip() if k else k, k): v for k, v in row.items()}
            for row in csv.DictReader(io.StringIO(text))]
