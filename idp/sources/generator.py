"""A synthetic population of any size: valid IDs, Chinese names, schools, classes (issue 3 item 8).

Deterministic for a seed. It plays the *external* systems, so its output carries clear (synthetic)
numbers exactly as a real feed does; the adapters turn them into ``NationalId`` at once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from idp.identity.models import academic_term
from idp.identity.nationalid import LETTER_VALUES, check_digit

SURNAMES = "陳林黃張李王吳劉蔡楊許鄭謝洪郭邱曾廖賴徐周葉蘇莊呂江何蕭羅高潘簡朱鍾游彭詹胡施沈余盧梁趙顏柯翁魏孫戴"
GIVEN = "宜庭家怡雅婷志明俊傑冠宇承恩柏翰品妤子涵詠晴宥廷彥廷欣妍語彤芷瑜佳穎建宏淑芬美玲信宏文雄"
COUNTIES = {"63": "臺北市", "64": "高雄市", "01": "新北市", "03": "桃園市", "66": "臺中市", "67": "臺南市"}
# How each county's education network starts its pupils' account names (縣市帳號) in the synthetic data.
COUNTY_ACCOUNT_PREFIX = {"63": "tp", "64": "kh", "01": "ntpc", "02": "ilc", "03": "tyc", "15": "hlc", "66": "tc",
                         "67": "tn"}
CLASS_WORDS = "忠孝仁愛信義和平"


@dataclass(frozen=True)
class SyntheticPerson:
    national_id: str = field(repr=False)  # clear, synthetic: only for feeding fake sources
    name: str
    birth_date: dt.date
    school_code: str
    role: str  # 學生 / 教師 / 職員
    title: str | None
    grade: int | None
    class_no: str | None
    class_name: str | None
    county: str


def make_id(rng: random.Random, second: str | None = None) -> str:
    letter = rng.choice(list(LETTER_VALUES))
    first9 = letter + (second or rng.choice("12")) + f"{rng.randrange(10**7):07d}"
    return first9 + check_digit(first9)


def school_codes(n_schools: int, rng: random.Random) -> list[tuple[str, str]]:
    """(county code, 6-character school code) pairs."""
    counties = list(COUNTIES)
    return [(c, f"{c}{rng.randrange(10**4):04d}") for c in (counties[i % len(counties)] for i in range(n_schools))]


def population(n: int, seed: int = 1, n_schools: int | None = None, today: dt.date | None = None,
               teacher_share: float = 0.08,
               schools: list[tuple[str, str]] | None = None) -> Iterator[SyntheticPerson]:
    """``n`` distinct people, about 92 % students (grades 1–12) and 8 % staff, at random codes or at
    the given (county code, school code) pairs (the demo uses its school directory)."""
    rng = random.Random(seed)
    today = today or dt.date(2025, 9, 1)
    schools = list(schools) if schools else school_codes(n_schools or max(1, n // 400), rng)
    seen: set[str] = set()
    for _ in range(n):
        nid = make_id(rng)
        while nid in seen:
            nid = make_id(rng)
        seen.add(nid)
        county, school = rng.choice(schools)
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        if rng.random() < teacher_share:
            role = "教師" if rng.random() < 0.8 else "職員"
            title = "校長" if rng.random() < 0.02 else ("導師" if role == "教師" else None)
            birth = dt.date(today.year - rng.randint(24, 64), rng.randint(1, 12), rng.randint(1, 28))
            yield SyntheticPerson(nid, name, birth, school, role, title, None, None, None, county)
        else:
            grade = rng.randint(1, 12)
            birth = dt.date(today.year - 6 - grade, rng.randint(1, 12), rng.randint(1, 28))
            cls = rng.randint(1, 12)
            yield SyntheticPerson(nid, name, birth, school, "學生", None, grade, f"{grade}{cls:02d}",
                                  f"{grade}年{CLASS_WORDS[cls % len(CLASS_WORDS)]}班", county)


def county_account(p: SyntheticPerson) -> str | None:
    """A pupil's account at their county's education network (縣市帳號), as the county would have
    issued it: the county's prefix and six digits fixed by the (synthetic) person, e.g. ``ntpc123456``
    for a 新北市 pupil. Staff have none here: the county student systems export pupils only."""
    if p.role != "學生":
        return None
    digits = int.from_bytes(hashlib.sha256(p.national_id.encode()).digest()[:8], "big") % 10**6
    return f"{COUNTY_ACCOUNT_PREFIX.get(p.county, 'edu')}{digits:06d}"


def county_raw(p: SyntheticPerson, today: dt.date | None = None) -> dict:
    year, sem = academic_term(today or dt.date(2025, 9, 1))
    return {"sid": p.national_id, "stu_name": p.name, "birthday": p.birth_date.isoformat(), "sch_code": p.school_code,
            "grade": p.grade, "class_no": p.class_no, "class_title": p.class_name, "status": "在學",
            "acad_year": year, "term": sem, "county_account": county_account(p)}


def k12_raw(p: SyntheticPerson, today: dt.date | None = None) -> dict:
    year, sem = academic_term(today or dt.date(2025, 9, 1))
    return {"idno": p.national_id, "cname": p.name, "birth_ymd": p.birth_date.strftime("%Y%m%d"),
            "schno": p.school_code, "grade": p.grade, "clsno": p.class_no, "clsname": p.class_name,
            "enroll_status": "1", "syear": year, "sem": sem}


def webhr_raw(p: SyntheticPerson) -> dict:
    roc = f"{p.birth_date.year - 1911}/{p.birth_date.month:02d}/{p.birth_date.day:02d}"
    return {"pid": p.national_id, "fullName": p.name, "birthDate": roc,
            "posts": [{"orgCode": p.school_code, "jobType": p.role, "title": p.title, "onDuty": True}]}


def roster_csv(people: list[SyntheticPerson]) -> str:
    lines = ["姓名,使用者識別碼,生日,年級,班級,班級名稱"]
    for p in people:
        lines.append(f"{p.name},{p.national_id},{p.birth_date.strftime('%m%d')},{p.grade or ''},"
                     f"{p.class_no or ''},{p.class_name or ''}")
    return "\n".join(lines) + "\n"
