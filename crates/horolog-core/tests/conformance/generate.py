#!/usr/bin/env python3
"""Generate tests/conformance/vectors.json: horolog trigger specs with the fire times that
APScheduler 4 computes for the equivalent Python trigger.

Run from the repository root:

    python3 crates/horolog-core/tests/conformance/generate.py

The script creates (or reuses) a throwaway virtualenv in .venv-conformance/ (gitignored),
installs the pinned APScheduler pre-release and the pinned tzdata package there, then
re-executes itself inside that venv and writes vectors.json. The output is deterministic:
no wall-clock "now" is used anywhere (every trigger has an explicit start), cases are sorted
by name, and the time-zone database is the pinned `tzdata` PyPI package (the system
zoneinfo directory is deliberately not used), so the result does not depend on the host.

Versions: APScheduler 4.0.0a6 is the newest 4.x pre-release on PyPI
(`pip index versions --pre apscheduler`). tzdata 2025.2 is IANA 2025b, the release that
chrono-tz 0.10.4 (horolog's Cargo.lock) bundles.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

APSCHEDULER_VERSION = "4.0.0a6"
TZDATA_VERSION = "2025.2"  # IANA 2025b

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
VENV = REPO / ".venv-conformance"
OUT = HERE / "vectors.json"
INNER_FLAG = "HOROLOG_CONFORMANCE_INNER"


def bootstrap() -> None:
    """Create the venv, install the pinned packages, re-exec inside it."""
    py = VENV / "bin" / "python"
    if not py.exists():
        subprocess.check_call([sys.executable, "-m", "venv", str(VENV)])
    subprocess.check_call(
        [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--pre",
         f"apscheduler=={APSCHEDULER_VERSION}", f"tzdata=={TZDATA_VERSION}"]
    )
    env = dict(os.environ)
    env[INNER_FLAG] = "1"
    env["TZ"] = "UTC"  # no trigger should depend on the local zone; make sure it cannot vary
    env["PYTHONHASHSEED"] = "0"
    os.execve(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]], env)


if os.environ.get(INNER_FLAG) != "1":
    bootstrap()

# --------------------------------------------------------------------------------------------
# Inside the venv from here on.

import zoneinfo  # noqa: E402

# Use only the pinned tzdata package, never the host's /usr/share/zoneinfo.
zoneinfo.reset_tzpath([])

import importlib.metadata  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
from collections import Counter  # noqa: E402
from datetime import date, datetime, timedelta, timezone  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

import tzdata  # noqa: E402
from apscheduler.triggers.calendarinterval import CalendarIntervalTrigger  # noqa: E402
from apscheduler.triggers.combining import AndTrigger, OrTrigger  # noqa: E402
from apscheduler.triggers.cron import CronTrigger  # noqa: E402
from apscheduler.triggers.date import DateTrigger  # noqa: E402
from apscheduler.triggers.interval import IntervalTrigger  # noqa: E402

assert importlib.metadata.version("apscheduler") == APSCHEDULER_VERSION
assert importlib.metadata.version("tzdata") == TZDATA_VERSION
assert zoneinfo.TZPATH == ()

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
FIELD_NAMES = [  # horolog camelCase -> APScheduler keyword, most significant first
    ("year", "year"), ("month", "month"), ("day", "day"), ("week", "week"),
    ("dayOfWeek", "day_of_week"), ("hour", "hour"), ("minute", "minute"), ("second", "second"),
]
DURATION_RE = re.compile(r"([0-9]+)(ms|w|d|h|m|s)")
UNIT_SECONDS = {"ms": 0.001, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}

# --------------------------------------------------------------------------------------------
# Helpers to write specs


def rfc(dt: datetime) -> str:
    """RFC 3339 text of an aware datetime (Z for UTC zone)."""
    s = dt.isoformat()
    if s.endswith("+00:00") and getattr(dt.tzinfo, "key", None) in ("UTC", None):
        s = s[:-6] + "Z"
    return s


def exists(dt: datetime) -> bool:
    back = dt.astimezone(timezone.utc).astimezone(dt.tzinfo)
    return back.replace(tzinfo=None) == dt.replace(tzinfo=None)


def L(tz: str, local: str | datetime, fold: int = 0) -> str:
    """RFC 3339 text for a local wall time in zone tz (must exist)."""
    naive = datetime.fromisoformat(local) if isinstance(local, str) else local
    dt = naive.replace(tzinfo=ZoneInfo(tz), fold=fold)
    if not exists(dt):
        raise AssertionError(f"{local} does not exist in {tz}")
    return rfc(dt)


def spec(tz: str, start: str | datetime, end: str | datetime | None = None,
         start_fold: int = 0, end_fold: int = 0, **kind) -> dict:
    d = dict(kind)
    d["timezone"] = tz
    d["startTime"] = L(tz, start, start_fold)
    if end is not None:
        d["endTime"] = L(tz, end, end_fold)
    return d


def parse_duration(s: str) -> float | int:
    assert re.fullmatch(r"([0-9]+(ms|w|d|h|m|s))+", s), s
    total = 0.0
    for num, unit in DURATION_RE.findall(s):
        total += int(num) * UNIT_SECONDS[unit]
    return int(total) if total == int(total) else total


# --------------------------------------------------------------------------------------------
# Spec -> APScheduler trigger (+ the Python call text)


def dt_repr(dt: datetime) -> str:
    if isinstance(dt.tzinfo, ZoneInfo):
        parts = [dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second]
        args = ", ".join(str(p) for p in parts)
        if dt.microsecond:
            args += f", {dt.microsecond}"
        if dt.fold:
            args += ", fold=1"
        return f"datetime({args}, tzinfo=ZoneInfo({dt.tzinfo.key!r}))"
    if dt.tzinfo is timezone.utc:
        parts = [dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second]
        args = ", ".join(str(p) for p in parts)
        if dt.microsecond:
            args += f", {dt.microsecond}"
        return f"datetime({args}, tzinfo=timezone.utc)"
    return f"datetime.fromisoformat({dt.isoformat()!r})"


def kwargs_repr(kw: list[tuple[str, object]]) -> str:
    out = []
    for k, v in kw:
        if isinstance(v, datetime):
            out.append(f"{k}={dt_repr(v)}")
        elif isinstance(v, date):
            out.append(f"{k}=date({v.year}, {v.month}, {v.day})")
        else:
            out.append(f"{k}={v!r}")
    return ", ".join(out)


def to_py_time(text: str, tz: str, own_zone: bool) -> datetime:
    dt = datetime.fromisoformat(text)
    if own_zone:
        return dt.astimezone(ZoneInfo(tz))
    # deliberately keep the instant in UTC (the *-start-other-tz-* cases)
    return dt.astimezone(timezone.utc)


def build_leaf(leaf: dict, tz: str, start: str, end: str | None, own_zone: bool):
    """Returns (trigger factory, call text). The factory may raise."""
    start_dt = to_py_time(start, tz, own_zone)
    end_dt = to_py_time(end, tz, True) if end else None
    if "cron" in leaf:
        expr = leaf["cron"]
        win = [("timezone", tz), ("start_time", start_dt)]
        if end_dt:
            win.append(("end_time", end_dt))
        fields = None
        if expr.strip() in ALIASES:
            vals = ALIASES[expr.strip()].split()
            fields = list(zip(["minute", "hour", "day", "month", "day_of_week"], vals))
        elif len(expr.split()) == 6:
            vals = expr.split()
            fields = list(zip(["second", "minute", "hour", "day", "month", "day_of_week"], vals))
        if fields is None:
            kw = dict(win)
            return (lambda: CronTrigger.from_crontab(expr, **kw),
                    f"CronTrigger.from_crontab({expr!r}, {kwargs_repr(win)})")
        allkw = fields + win
        kw = dict(allkw)
        return (lambda: CronTrigger(**kw), f"CronTrigger({kwargs_repr(allkw)})")
    if "cronFields" in leaf:
        cf = leaf["cronFields"]
        allkw = [(py, cf[js]) for js, py in FIELD_NAMES if js in cf]
        assert len(allkw) == len(cf), cf
        allkw += [("timezone", tz), ("start_time", start_dt)]
        if end_dt:
            allkw.append(("end_time", end_dt))
        kw = dict(allkw)
        return (lambda: CronTrigger(**kw), f"CronTrigger({kwargs_repr(allkw)})")
    if "interval" in leaf:
        allkw = [("seconds", parse_duration(leaf["interval"])), ("start_time", start_dt)]
        if end_dt:
            allkw.append(("end_time", end_dt))
        kw = dict(allkw)
        return (lambda: IntervalTrigger(**kw), f"IntervalTrigger({kwargs_repr(allkw)})")
    if "date" in leaf:
        run = datetime.fromisoformat(leaf["date"])
        return (lambda: DateTrigger(run), f"DateTrigger({dt_repr(run)})")
    if "calendarInterval" in leaf:
        ci = leaf["calendarInterval"]
        allkw = [(k, ci[k]) for k in ("years", "months", "weeks", "days", "hour", "minute", "second")
                 if k in ci]
        allkw.append(("start_date", start_dt.date()))
        if end_dt:
            allkw.append(("end_date", end_dt.date()))
        allkw.append(("timezone", tz))
        kw = dict(allkw)
        return (lambda: CalendarIntervalTrigger(**kw),
                f"CalendarIntervalTrigger({kwargs_repr(allkw)})")
    raise AssertionError(f"no leaf kind in {leaf}")


def build(name: str, trig: dict):
    tz = trig["timezone"]
    own_zone = "-start-other-tz-" not in name
    start, end = trig["startTime"], trig.get("endTime")
    for combo in ("anyOf", "allOf"):
        if combo in trig:
            members = []
            for m in trig[combo]:
                members.append(build_leaf(m, m.get("timezone", tz), m.get("startTime", start),
                                          m.get("endTime", end), own_zone))
            texts = ", ".join(t for _, t in members)
            if combo == "anyOf":
                return (lambda: OrTrigger([f() for f, _ in members]), f"OrTrigger([{texts}])")
            extra = []
            if "allOfThreshold" in trig:
                extra = [("threshold", parse_duration(trig["allOfThreshold"]))]
            kw = dict(extra)
            call = f"AndTrigger([{texts}]" + (f", {kwargs_repr(extra)}" if extra else "") + ")"
            return (lambda: AndTrigger([f() for f, _ in members], **kw), call)
    return build_leaf(trig, tz, start, end, own_zone)


def utc_text(dt: datetime) -> str:
    u = dt.astimezone(timezone.utc)
    s = u.strftime("%Y-%m-%dT%H:%M:%S")
    if u.microsecond:
        s += f".{u.microsecond:06d}"
    return s + "Z"


def err_text(e: BaseException) -> str:
    msg = str(e)
    return f"{type(e).__name__}: {msg}" if msg else type(e).__name__


def run_case(name: str, trig: dict, count: int) -> dict:
    factory, call = build(name, trig)
    expected: list[datetime] = []
    exhausted = False
    error = None
    try:
        t = factory()
        for _ in range(count):
            v = t.next()
            if v is None:
                exhausted = True
                break
            expected.append(v)
    except Exception as e:  # noqa: BLE001 - record whatever APScheduler raises
        error = err_text(e)
    return {
        "name": name,
        "trigger": canon(trig),
        "apscheduler": call,
        "count": count,
        "expected": [v.isoformat() for v in expected],
        "expected_utc": [utc_text(v) for v in expected],
        "exhausted": exhausted,
        "error": error,
    }


def canon(obj):
    if isinstance(obj, dict):
        return {k: canon(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [canon(x) for x in obj]
    return obj


# --------------------------------------------------------------------------------------------
# The cases

CASES: dict[str, tuple[dict, int]] = {}
NAME_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


def add(name: str, trig: dict, count: int = 12) -> None:
    assert NAME_RE.match(name), name
    assert name not in CASES, name
    CASES[name] = (trig, count)


UTC = "UTC"
BER = "Europe/Berlin"
NYC = "America/New_York"
S0 = "2024-01-01T00:00:00"   # aligned start
S1 = "2024-05-14T10:17:23"   # unaligned start (a Tuesday)


def crontab_cases() -> None:
    five = [
        ("every-minute", "* * * * *"),
        ("every-15-min", "*/15 * * * *"),
        ("hourly", "0 * * * *"),
        ("daily-0930", "30 9 * * *"),
        ("weekdays-0900-names", "0 9 * * mon-fri"),
        ("weekdays-0900-numbers", "0 9 * * 1-5"),
        ("weekdays-mixed-case", "0 9 * * Mon-FRI"),
        ("dow-0-is-sunday", "0 9 * * 0"),
        ("dow-7-is-sunday", "0 9 * * 7"),
        ("dow-sun", "0 9 * * sun"),
        ("dow-sun-upper", "0 9 * * SUN"),
        ("dow-list-6-0", "0 0 * * 6,0"),
        ("dow-list-sat-sun", "0 0 * * sat,sun"),
        ("dow-list-mon-wed-fri", "0 0 * * mon,wed,fri"),
        ("dow-list-numbers-1-3-5", "0 0 * * 1,3,5"),
        ("dow-range-0-6", "0 0 * * 0-6"),
        ("dow-wrap-fri-mon", "0 0 * * fri-mon"),
        ("dow-wrap-5-1", "0 0 * * 5-1"),
        ("dow-wrap-sat-mon", "0 0 * * sat-mon"),
        ("dow-wrap-7-1", "0 0 * * 7-1"),
        ("dow-range-6-7", "0 0 * * 6-7"),
        ("dow-step-star-2", "0 0 * * */2"),
        ("dow-step-star-3", "0 0 * * */3"),
        ("monthday-1-noon", "0 12 1 * *"),
        ("month-name-jan", "0 12 1 jan *"),
        ("month-name-list-upper", "0 12 1 JAN,jul *"),
        ("month-name-range", "0 0 1 jan-mar *"),
        ("month-range-numbers", "0 0 15 1-6 *"),
        ("month-step-3", "0 0 1 */3 *"),
        ("month-range-step", "0 0 1 2-12/5 *"),
        ("dom-and-dow-friday-13th", "0 0 13 * 5"),
        ("dom-and-dow-friday-13th-name", "0 0 13 * fri"),
        ("dom-range-and-dow-first-monday", "0 0 1-7 * mon"),
        ("dom-list-and-dow-wed", "0 0 1,15 * 3"),
        ("minute-list", "5,10,15 * * * *"),
        ("minute-range-step", "0-10/5 * * * *"),
        ("minute-start-step", "10/15 * * * *"),
        ("minute-59-step-59-range", "0-59/59 * * * *"),
        ("hour-range-step", "0 8-18/2 * * *"),
        ("hour-range", "0 8-18 * * *"),
        ("hour-step-6", "0 */6 * * *"),
        ("hour-step-23", "0 */23 * * *"),
        ("hour-start-step", "0 5/7 * * *"),
        ("dom-step-10", "0 0 */10 * *"),
        ("dom-last", "0 0 last * *"),
        ("dom-29-feb-leap", "0 0 29 2 *"),
        ("dom-31-skips-short-months", "0 0 31 * *"),
        ("dom-30", "0 6 30 * *"),
        ("new-years-eve-last-minute", "59 23 31 12 *"),
        ("first-of-month-1415", "15 14 1 * *"),
        ("weeknights-2200", "0 22 * * 1-5"),
        ("odd-minute-even-hours", "23 0-20/2 * * *"),
        ("twice-a-day-every-other-month", "0 0,12 1 */2 *"),
        ("dom-range-8-14", "0 4 8-14 * *"),
        ("business-hours-every-5", "*/5 9-17 * * mon-fri"),
        ("summer-mondays", "0 9 * 6-8 mon"),
        ("half-past-every-2h", "30 */2 * * *"),
        ("yearly-jan-1", "0 0 1 1 *"),
        ("extra-whitespace", "  0   9 *  * *  "),
        ("list-with-ranges", "0,30 1-3,22-23 * * *"),
        ("dom-list-unsorted", "0 0 20,5,12 * *"),
    ]
    sparse = {"dom-29-feb-leap": 6, "dom-and-dow-friday-13th": 8, "dom-and-dow-friday-13th-name": 8,
              "new-years-eve-last-minute": 4, "yearly-jan-1": 4}
    for name, expr in five:
        n = sparse.get(name, 12)
        add(f"cron-{name}", spec(UTC, S0, cron=expr), n)
    # the same in other zones / unaligned starts
    for name, expr in [("every-15-min", "*/15 * * * *"), ("weekdays-0900-names", "0 9 * * mon-fri"),
                       ("hourly", "0 * * * *"), ("dom-last", "0 0 last * *"),
                       ("dow-wrap-fri-mon", "0 0 * * fri-mon"), ("every-minute", "* * * * *"),
                       ("dom-and-dow-friday-13th", "0 0 13 * 5"), ("minute-start-step", "10/15 * * * *")]:
        add(f"cron-unaligned-start-{name}", spec(UTC, S1, cron=expr), sparse.get(name, 12))
    for name, expr in [("weekdays-0900", "0 9 * * mon-fri"), ("daily-0930", "30 9 * * *"),
                       ("every-15-min", "*/15 * * * *")]:
        add(f"cron-berlin-{name}", spec(BER, S1, cron=expr))
        add(f"cron-tokyo-{name}", spec("Asia/Tokyo", S1, cron=expr))
        add(f"cron-kathmandu-{name}", spec("Asia/Kathmandu", S1, cron=expr))
    # start time that matches (inclusive) and microseconds
    add("cron-start-matches-inclusive", spec(UTC, "2024-01-01T09:00:00", cron="0 9 * * *"), 3)
    add("cron-start-one-second-after-match", spec(UTC, "2024-01-01T09:00:01", cron="0 9 * * *"), 3)
    add("cron-start-micro-every-minute", spec(UTC, "2024-01-01T00:00:00.500000", cron="* * * * *"), 4)
    add("cron-start-micro-every-minute-unaligned",
        spec(UTC, "2024-01-01T00:00:10.250000", cron="* * * * *"), 4)
    add("cron6-start-micro-every-second", spec(UTC, "2024-01-01T00:00:00.500000", cron="* * * * * *"), 4)
    # end time
    add("cron-end-time-inclusive", spec(UTC, S0, end="2024-01-03T09:00:00", cron="0 9 * * *"), 5)
    add("cron-end-time-between", spec(UTC, S0, end="2024-01-03T08:59:59", cron="0 9 * * *"), 5)
    add("cron-berlin-end-time", spec(BER, S0, end="2024-01-01T03:00:00", cron="*/30 * * * *"), 12)

    six = [
        ("every-second", "* * * * * *"),
        ("second-30-every-minute", "30 * * * * *"),
        ("every-10-seconds", "*/10 * * * * *"),
        ("weekdays-0900-00", "0 0 9 * * mon-fri"),
        ("second-list", "15,45 30 8 * * *"),
        ("second-range-step", "0-30/15 0 0 1 * *"),
        ("new-years-eve-last-second", "59 59 23 31 12 *"),
        ("every-7-seconds", "*/7 * * * * *"),
        ("every-20-minutes-sec-0", "0 */20 * * * *"),
        ("second-start-step", "5/20 * * * * *"),
        ("dow-7-sunday", "0 0 12 * * 7"),
        ("wrap-dow", "0 0 12 * * sat-mon"),
        ("month-name", "0 0 0 1 feb,aug *"),
    ]
    for name, expr in six:
        n = 4 if name == "new-years-eve-last-second" else 12
        add(f"cron6-{name}", spec(UTC, S1, cron=expr), n)
    add("cron6-berlin-every-10-seconds", spec(BER, S0, cron="*/10 * * * * *"))

    for alias in ALIASES:
        n = 4 if alias in ("@yearly", "@annually") else 8
        add(f"cron-alias-{alias[1:]}", spec(UTC, S1, cron=alias), n)
    add("cron-alias-daily-berlin", spec(BER, S1, cron="@daily"), 5)
    add("cron-alias-weekly-new-york", spec(NYC, S1, cron="@weekly"), 5)
    add("cron-alias-hourly-chatham", spec("Pacific/Chatham", S1, cron="@hourly"), 5)
    add("cron-alias-midnight-santiago-spring",
        spec("America/Santiago", "2024-09-06T00:00:00", cron="@midnight"), 5)
    add("cron-alias-monthly-end-time", spec(UTC, S0, end="2024-04-01T00:00:00", cron="@monthly"), 8)

    # rejected by APScheduler
    invalid = [
        ("minute-step-60", "*/60 * * * *"),
        ("minute-59-step-2", "59/2 * * * *"),
        ("minute-range-reversed", "30-10 * * * *"),
        ("hour-range-reversed", "0 5-3 * * *"),
        ("hour-step-24", "0 */24 * * *"),
        ("dom-step-31", "0 0 */31 * *"),
        ("dom-range-step-too-big", "0 0 4-6/3 * *"),
        ("dow-8", "0 0 * * 8"),
        ("dow-unknown-name", "0 0 * * foo"),
        ("month-unknown-name", "0 0 1 foo *"),
        ("month-range-reversed-names", "0 0 1 dec-jan *"),
        ("dom-letter-l", "0 0 L * *"),
        ("dom-5l", "0 0 5L * *"),
        ("dom-15w", "0 0 15W * *"),
        ("dom-question-mark", "0 0 ? * *"),
        ("dow-question-mark", "0 0 * * ?"),
        ("dow-5l", "0 0 * * 5L"),
        ("minute-60", "60 * * * *"),
        ("hour-24", "0 24 * * *"),
        ("dom-0", "0 0 0 * *"),
        ("dom-32", "0 0 32 * *"),
        ("month-0", "0 0 1 0 *"),
        ("month-13", "0 0 1 13 *"),
        ("minute-negative", "-5 * * * *"),
        ("minute-step-0", "*/0 * * * *"),
        ("dow-step-8", "0 0 * * */8"),
        ("hour-name", "0 nine * * *"),
        ("four-fields", "* * * *"),
        ("seven-fields", "0 0 0 1 1 * 2030"),
        ("reboot", "@reboot"),
        ("every-5m-macro", "@every 5m"),
        ("six-fields-second-60", "60 * * * * *"),
        ("dow-hash-nth-number", "0 0 * * 1#2"),
        ("dow-full-name", "0 0 * * monday"),
        ("month-full-name", "0 0 1 january *"),
    ]
    for name, expr in invalid:
        add(f"cron-invalid-{name}", spec(UTC, S0, cron=expr), 3)
    # accepted but misread by APScheduler (recorded as is)
    misread = [
        ("dow-names-range-step", "0 0 * * mon-fri/2"),
        ("dow-hash-nth", "0 0 * * mon#2"),
        ("month-name-step", "0 0 1 jan/2 *"),
        ("month-name-range-step", "0 0 1 jan-jun/2 *"),
        ("dow-numeric-range-step", "0 0 * * 1-5/2"),
        ("dow-numeric-start-step", "0 0 * * 1/2"),
        ("dow-0-7", "0 0 * * 0-7"),
        ("dom-last-step", "0 0 last/2 * *"),
        ("dom-lastx", "0 0 lastx * *"),
    ]
    for name, expr in misread:
        add(f"cron-misread-{name}", spec(UTC, S0, cron=expr), 8)
    add("cron-never-feb-30", spec(UTC, S0, cron="0 0 30 2 *"), 3)
    add("cron-never-apr-31", spec(UTC, S0, cron="0 0 31 4,6,9,11 *"), 3)


def cronfields_cases() -> None:
    F = lambda **kw: {"cronFields": kw}  # noqa: E731
    cases = [
        ("year-range", F(year="2027-2030"), 6),
        ("year-step-4", F(year="*/4"), 5),
        ("year-single-full-date", F(year="2025", month="6", day="15", hour="12"), 3),
        ("year-list", F(year="2025,2027", month="12", day="last"), 4),
        ("week-step-2", F(week="*/2"), 12),
        ("week-range", F(week="10-12"), 24),
        ("week-1-monday", F(week="1", dayOfWeek="mon", hour="8"), 5),
        ("week-53", F(week="53"), 10),
        ("week-and-hour", F(week="*/2", dayOfWeek="fri", hour="17", minute="30"), 8),
        ("day-last", F(day="last"), 12),
        ("day-last-fri", F(day="last fri"), 12),
        ("day-last-sun-upper", F(day="LAST SUN", hour="9"), 6),
        ("day-1st-sun", F(day="1st sun", hour="10"), 8),
        ("day-2nd-mon", F(day="2nd mon"), 12),
        ("day-3rd-wed", F(day="3rd wed", hour="14", minute="45"), 8),
        ("day-4th-thu-november", F(month="11", day="4th thu"), 5),
        ("day-5th-fri", F(day="5th fri"), 12),
        ("day-5th-sat-hour", F(day="5th sat", hour="6"), 8),
        ("day-nth-list", F(day="1st mon,3rd mon", hour="9"), 8),
        ("day-last-and-1", F(day="1,last", hour="12"), 8),
        ("day-list-spaces", F(day="1, 15", hour="12"), 8),
        ("day-and-dow-friday-13th", F(day="13", dayOfWeek="fri"), 6),
        ("day-range-and-dow", F(day="1-7", dayOfWeek="tue", hour="18"), 8),
        ("day-last-and-dow", F(day="last", dayOfWeek="sat-sun"), 6),
        ("day-nth-and-dow-disagree", F(day="1st mon", dayOfWeek="tue"), 3),
        ("only-hour", F(hour="5"), 6),
        ("only-month", F(month="6"), 4),
        ("only-day", F(day="15"), 6),
        ("only-day-of-week", F(dayOfWeek="mon"), 6),
        ("only-minute", F(minute="7"), 6),
        ("only-second", F(second="30"), 6),
        ("only-week", F(week="2"), 10),
        ("only-year", F(year="2030"), 3),
        ("empty", F(), 4),
        ("month-and-minute", F(month="3", minute="15"), 6),
        ("day-and-second", F(day="10", second="5"), 6),
        ("dow-and-second", F(dayOfWeek="wed", second="0,30"), 6),
        ("second-step", F(second="*/15"), 10),
        ("second-list-minute-step", F(minute="*/5", second="0,30"), 10),
        ("leap-day", F(month="2", day="29"), 5),
        ("leap-day-noon", F(month="2", day="29", hour="12"), 3),
        ("day-31", F(day="31"), 10),
        ("day-31-hour", F(day="31", hour="23", minute="59", second="59"), 8),
        ("day-step-10", F(day="*/10"), 10),
        ("month-names-range", F(month="jun-aug", day="1"), 6),
        ("month-step", F(month="*/4", day="1", hour="0"), 6),
        ("dow-0", F(dayOfWeek="0", hour="9"), 4),
        ("dow-7", F(dayOfWeek="7", hour="9"), 4),
        ("dow-int-like-1-5", F(dayOfWeek="1-5", hour="9"), 8),
        ("dow-step-2", F(dayOfWeek="*/2"), 8),
        ("dow-step-3", F(dayOfWeek="*/3"), 8),
        ("dow-step-7", F(dayOfWeek="*/7"), 4),
        ("dow-wrap-sat-mon", F(dayOfWeek="sat-mon", hour="12"), 8),
        ("dow-wrap-5-1", F(dayOfWeek="5-1", hour="12"), 8),
        ("dow-list-names", F(dayOfWeek="tue,thu", hour="7", minute="45"), 8),
        ("hour-step-from", F(hour="5/2"), 12),
        ("hour-star-step-23", F(hour="*/23"), 6),
        ("minute-0-59-step-59", F(minute="0-59/59"), 6),
        ("minute-range-step", F(hour="9-10", minute="10-50/20"), 10),
        ("all-fields", F(year="2024-2026", month="*/6", day="1st mon", week="*", dayOfWeek="*",
                         hour="8", minute="0", second="0"), 8),
        ("all-stars", F(year="*", month="*", day="*", week="*", dayOfWeek="*", hour="*",
                        minute="*", second="*"), 5),
        ("numbers-as-plain-strings", F(month="7", day="4", hour="0"), 3),
    ]
    for name, kind, n in cases:
        add(f"cronfields-{name}", spec(UTC, S1, **kind), n)
    add("cronfields-start-aligned-week-step-2", spec(UTC, S0, cronFields={"week": "*/2"}), 10)
    add("cronfields-end-time", spec(UTC, S0, end="2024-01-05T00:00:00",
                                    cronFields={"hour": "12"}), 10)
    add("cronfields-year-range-exhausts", spec(UTC, S0, cronFields={"year": "2024-2026", "month": "3"}), 5)
    add("cronfields-berlin-2nd-mon", spec(BER, S0, cronFields={"day": "2nd mon", "hour": "9"}), 6)
    add("cronfields-new-york-last-fri", spec(NYC, S0, cronFields={"day": "last fri", "hour": "17"}), 6)
    add("cronfields-never-feb-30", spec(UTC, S0, cronFields={"month": "2", "day": "30"}), 3)
    add("cronfields-never-5th-mon-feb-2025-only",
        spec(UTC, S0, cronFields={"year": "2025", "month": "2", "day": "5th mon"}), 3)

    invalid = [
        ("minute-step-60", {"minute": "*/60"}),
        ("minute-59-step-2", {"minute": "59/2"}),
        ("hour-step-24", {"hour": "*/24"}),
        ("day-step-31", {"day": "*/31"}),
        ("day-range-step-too-big", {"day": "4-6/3"}),
        ("hour-range-reversed", {"hour": "5-3"}),
        ("month-range-reversed", {"month": "10-2"}),
        ("minute-60", {"minute": "60"}),
        ("second-60", {"second": "60"}),
        ("day-0", {"day": "0"}),
        ("month-13", {"month": "13"}),
        ("week-0", {"week": "0"}),
        ("week-54", {"week": "54"}),
        ("year-1969", {"year": "1969"}),
        ("year-10000", {"year": "10000"}),
        ("dow-8", {"dayOfWeek": "8"}),
        ("dow-unknown-name", {"dayOfWeek": "xyz"}),
        ("month-unknown-name", {"month": "foo"}),
        ("day-letter-l", {"day": "L"}),
        ("day-15w", {"day": "15W"}),
        ("dow-question-mark", {"dayOfWeek": "?"}),
        ("day-nth-numeric-weekday", {"day": "2nd 1"}),
        ("day-6th-mon", {"day": "6th mon"}),
        ("day-nth-unknown-weekday", {"day": "2nd foo"}),
        ("hour-negative", {"hour": "-1"}),
        ("hour-name", {"hour": "9am"}),
        ("year-name", {"year": "abc"}),
        ("year-step-too-big", {"year": "*/10000"}),
        ("second-step-0", {"second": "*/0"}),
        ("dow-5l", {"dayOfWeek": "5L"}),
        ("empty-string", {"hour": ""}),
        ("day-last-full-weekday-name", {"day": "last friday"}),
    ]
    for name, fields in invalid:
        add(f"cronfields-invalid-{name}", spec(UTC, S0, cronFields=fields), 3)
    misread = [
        ("dow-names-range-step", {"dayOfWeek": "mon-fri/2"}),
        ("dow-hash-nth", {"dayOfWeek": "mon#2"}),
        ("month-name-step", {"month": "jan/2"}),
        ("dow-numeric-range-step", {"dayOfWeek": "1-5/2"}),
        ("dow-0-7", {"dayOfWeek": "0-7"}),
        ("day-last-step", {"day": "last/2"}),
        ("day-lastx", {"day": "lastx"}),
        ("day-nth-step", {"day": "1st mon/2"}),
    ]
    for name, fields in misread:
        add(f"cronfields-misread-{name}", spec(UTC, S0, cronFields=fields), 8)


def interval_cases() -> None:
    for name, dur, n in [("1h", "1h", 6), ("45m", "45m", 8), ("90s", "90s", 8), ("1d", "1d", 5),
                         ("1w", "1w", 5), ("1h30m", "1h30m", 6), ("2d12h", "2d12h", 5),
                         ("1s", "1s", 5), ("1500ms", "1500ms", 5), ("1w2d3h4m5s", "1w2d3h4m5s", 4)]:
        add(f"interval-utc-{name}", spec(UTC, S1, interval=dur), n)
    add("interval-utc-start-micro", spec(UTC, "2024-01-01T00:00:00.123456", interval="10s"), 4)
    add("interval-utc-end-time-inclusive", spec(UTC, S0, end="2024-01-01T03:00:00", interval="1h"), 8)
    add("interval-utc-end-time-between", spec(UTC, S0, end="2024-01-01T02:59:59", interval="1h"), 8)
    add("interval-utc-start-in-past", spec(UTC, "2000-01-01T00:00:00", interval="1d"), 3)
    add("interval-berlin-winter-45m", spec(BER, S0, interval="45m"), 6)
    add("interval-berlin-spring-1w", spec(BER, "2024-03-24T02:30:00", interval="1w"), 4)
    add("interval-new-york-fall-1w", spec(NYC, "2024-10-27T01:30:00", interval="1w"), 4)
    add("interval-utc-90s-end-time", spec(UTC, S0, end="2024-01-01T00:06:00", interval="90s"), 8)
    add("interval-utc-1w-end-time", spec(UTC, S0, end="2024-02-01T00:00:00", interval="1w"), 8)
    add("interval-tokyo-1h", spec("Asia/Tokyo", S1, interval="1h"), 4)
    add("interval-chatham-1d", spec("Pacific/Chatham", S1, interval="1d"), 3)
    add("interval-invalid-zero", spec(UTC, S0, interval="0s"), 3)


def date_cases() -> None:
    # DateTrigger has no start time: startTime is given (per the horolog spec) but APScheduler ignores it.
    add("date-future-utc", spec(UTC, S0, date="2030-06-15T12:00:00Z"), 3)
    add("date-future-offset", spec(BER, S0, date="2030-06-15T12:00:00+02:00"), 3)
    add("date-past-before-start", spec(UTC, S0, date="2000-01-01T00:00:00Z"), 3)
    add("date-equal-to-start", spec(UTC, S0, date="2024-01-01T00:00:00Z"), 3)
    add("date-micro", spec(UTC, S0, date="2030-01-01T00:00:00.250000Z"), 3)
    add("date-new-york-offset", spec(NYC, S0, date="2025-11-02T01:30:00-05:00"), 3)
    add("date-chatham-offset", spec("Pacific/Chatham", S0, date="2025-01-01T00:00:00+13:45"), 3)
    add("date-after-end-time", spec(UTC, S0, end="2024-06-01T00:00:00", date="2025-01-01T00:00:00Z"), 3)


def calint_cases() -> None:
    C = lambda **kw: {"calendarInterval": kw}  # noqa: E731
    cases = [
        ("months-1-from-jan-31", UTC, "2024-01-31", None, C(months=1), 12),
        ("months-1-days-1-from-jan-30", UTC, "2024-01-30", None, C(months=1, days=1), 10),
        ("years-1-from-feb-29", UTC, "2024-02-29", None, C(years=1), 4),
        ("months-12-from-feb-29", UTC, "2024-02-29", None, C(months=12), 3),
        ("months-3-from-nov-30", UTC, "2023-11-30", None, C(months=3), 8),
        ("weeks-2", UTC, "2024-01-01", None, C(weeks=2, hour=9, minute=30), 8),
        ("weeks-1-days-3", UTC, "2024-01-01", None, C(weeks=1, days=3, hour=6), 6),
        ("days-1", UTC, "2024-01-01", None, C(days=1), 5),
        ("days-10-with-seconds", UTC, "2024-01-01", None, C(days=10, hour=23, minute=59, second=59), 6),
        ("years-1-months-6", UTC, "2024-03-31", None, C(years=1, months=6, hour=12), 5),
        ("months-1-end-date", UTC, "2024-01-15", "2024-05-15", C(months=1, hour=8), 8),
        ("days-1-end-date-same-day", UTC, "2024-01-01", "2024-01-01", C(days=1, hour=12), 3),
        ("months-2-hour-10", UTC, "2022-06-07", None, C(months=2, hour=10), 6),
        ("berlin-months-1-on-31st-0230", BER, "2024-01-31", None, C(months=1, hour=2, minute=30), 6),
        ("berlin-weeks-1-from-gap-day", BER, "2024-03-31", None, C(weeks=1, hour=2, minute=30), 4),
        ("berlin-days-1-1230", BER, "2024-03-29", None, C(days=1, hour=12, minute=30), 5),
        ("new-york-months-1", NYC, "2024-01-10", None, C(months=1, hour=2, minute=30), 12),
        ("chatham-days-1", "Pacific/Chatham", "2024-09-27", None, C(days=1, hour=3), 5),
        ("apia-weeks-1-noon", "Pacific/Apia", "2011-12-23", None, C(weeks=1, hour=12), 4),
        ("apia-days-1-noon-skipped-day", "Pacific/Apia", "2011-12-28", None, C(days=1, hour=12), 6),
        ("apia-days-1-midnight", "Pacific/Apia", "2011-12-28", None, C(days=1), 6),
        ("invalid-all-zero", UTC, "2024-01-01", None, C(hour=1), 3),
        ("invalid-hour-24", UTC, "2024-01-01", None, C(days=1, hour=24), 3),
    ]
    for name, tz, sd, ed, kind, n in cases:
        end = f"{ed}T23:59:59" if ed else None
        add(f"calint-{name}", spec(tz, f"{sd}T00:00:00", end=end, **kind), n)


def combo_cases() -> None:
    add("anyof-cron-interval", spec(UTC, S0, anyOf=[{"cron": "0 9 * * *"}, {"interval": "7h"}]), 12)
    add("anyof-coincident-crons-dedup",
        spec(UTC, S0, anyOf=[{"cron": "0 * * * *"}, {"cron": "*/30 * * * *"}]), 12)
    add("anyof-identical-crons", spec(UTC, S0, anyOf=[{"cron": "*/20 * * * *"},
                                                       {"cronFields": {"minute": "*/20"}}]), 8)
    add("anyof-two-intervals", spec(UTC, S0, anyOf=[{"interval": "2h"}, {"interval": "3h"}]), 10)
    add("anyof-cron-date", spec(UTC, S0, anyOf=[{"cron": "0 0 * * *"},
                                                 {"date": "2024-01-02T12:00:00Z"}]), 6)
    add("anyof-dates-exhaust", spec(UTC, S0, anyOf=[{"date": "2024-03-01T00:00:00Z"},
                                                     {"date": "2024-02-01T00:00:00Z"},
                                                     {"date": "2024-03-01T00:00:00Z"}]), 5)
    add("anyof-calint-cron", spec(UTC, S0, anyOf=[{"calendarInterval": {"months": 1, "hour": 12}},
                                                   {"cron": "0 12 * * mon"}]), 10)
    add("anyof-end-time", spec(UTC, S0, end="2024-01-01T05:00:00",
                               anyOf=[{"cron": "0 */2 * * *"}, {"interval": "3h"}]), 10)
    add("anyof-berlin-fall-fixed-and-hourly",
        spec(BER, "2024-10-27T00:00:00", anyOf=[{"cron": "30 2 * * *"}, {"cron": "0 * * * *"}]), 8)
    add("anyof-berlin-fall-fold-dedup",
        spec(BER, "2024-10-27T01:00:00", anyOf=[{"cron": "*/30 * * * *"}, {"cron": "30 2 * * *"}]), 10)
    add("anyof-berlin-fall-cron-interval",
        spec(BER, "2024-10-27T01:00:00", anyOf=[{"cron": "30 * * * *"}, {"interval": "1h"}]), 10)
    add("anyof-berlin-spring-cron-interval",
        spec(BER, "2024-03-31T00:00:00", anyOf=[{"cron": "0 * * * *"}, {"interval": "1h"}]), 8)

    add("allof-intervals-2s-3s-default-threshold",
        spec(UTC, S0, allOf=[{"interval": "3s"}, {"interval": "2s"}]), 10)
    add("allof-intervals-2s-3s-threshold-0s",
        spec(UTC, S0, allOf=[{"interval": "3s"}, {"interval": "2s"}], allOfThreshold="0s"), 6)
    add("allof-intervals-8s-9s-default-threshold",
        spec(UTC, S0, allOf=[{"interval": "8s"}, {"interval": "9s"}]), 8)
    add("allof-user-guide-calint-cron",
        spec(UTC, "2022-06-07T00:00:00",
             allOf=[{"calendarInterval": {"months": 2, "hour": 10}},
                    {"cronFields": {"dayOfWeek": "mon-fri", "hour": "10"}}]), 6)
    add("allof-user-guide-calint-crontab",
        spec(UTC, "2022-06-07T00:00:00",
             allOf=[{"calendarInterval": {"months": 2, "hour": 10}}, {"cron": "0 10 * * mon-fri"}]), 6)
    add("allof-friday-13th-many-iterations",
        spec(UTC, S0, allOf=[{"cron": "0 0 13 * *"}, {"cron": "0 0 * * fri"}]), 6)
    add("allof-intervals-7s-11s-threshold-0s",
        spec(UTC, S0, allOf=[{"interval": "7s"}, {"interval": "11s"}], allOfThreshold="0s"), 5)
    add("allof-threshold-30m",
        spec(UTC, S0, allOf=[{"cron": "0 9 * * *"}, {"cron": "15 9 * * mon-fri"}],
             allOfThreshold="30m"), 8)
    add("allof-threshold-1500ms",
        spec(UTC, S0, allOf=[{"interval": "5s"}, {"interval": "7s"}], allOfThreshold="1500ms"), 8)
    add("allof-max-iterations-reached",
        spec(UTC, S0, allOf=[{"interval": "1s"}, {"cron": "0 0 1 1 *"}], allOfThreshold="0s"), 3)
    add("allof-with-date-exhausts",
        spec(UTC, S0, allOf=[{"cron": "0 12 * * *"}, {"date": "2024-01-03T12:00:00Z"}]), 3)
    add("allof-end-time", spec(UTC, S0, end="2024-01-01T00:01:00",
                               allOf=[{"interval": "10s"}, {"interval": "15s"}],
                               allOfThreshold="0s"), 5)
    add("allof-berlin-spring-cron-interval",
        spec(BER, "2024-03-31T00:00:00", allOf=[{"cron": "0 * * * *"}, {"interval": "1h"}]), 6)
    add("allof-berlin-fall-cron-interval",
        spec(BER, "2024-10-27T00:00:00", allOf=[{"cron": "0 * * * *"}, {"interval": "1h"}]), 6)


def other_tz_cases() -> None:
    add("cron-start-other-tz-berlin-0900",
        {"cron": "0 9 * * *", "timezone": BER, "startTime": "2024-01-01T08:30:00Z"}, 3)
    add("cronfields-start-other-tz-new-york-hour-9",
        {"cronFields": {"hour": "9"}, "timezone": NYC, "startTime": "2024-01-01T12:00:00Z"}, 3)
    add("cron-start-other-tz-tokyo-hourly",
        {"cron": "0 * * * *", "timezone": "Asia/Tokyo", "startTime": "2024-01-01T00:30:00Z"}, 3)
    add("cron-start-other-tz-chatham-weekdays",
        {"cron": "45 6 * * mon-fri", "timezone": "Pacific/Chatham",
         "startTime": "2024-01-01T00:00:00Z"}, 3)


# ---- DST ----------------------------------------------------------------------------------

def transitions(tz: str, year: int):
    """(utc instant, offset before, offset after) for each offset change in year."""
    z = ZoneInfo(tz)
    out = []
    t = datetime(year, 1, 1, tzinfo=timezone.utc) - timedelta(days=1)
    end = datetime(year + 1, 1, 1, tzinfo=timezone.utc)
    step = timedelta(minutes=15)
    prev = t.astimezone(z).utcoffset()
    while t < end:
        n = t + step
        off = n.astimezone(z).utcoffset()
        if off != prev:
            lo = t  # refine to the minute
            while lo.astimezone(z).utcoffset() == prev:
                lo += timedelta(minutes=1)
            if lo.year == year:
                out.append((lo, prev, off))
            prev = off
        t = n
    return out


def hhmm(dt: datetime) -> str:
    return f"{dt.hour:02d}{dt.minute:02d}"


def dst_cases() -> None:
    full = [("berlin", BER, 2024), ("new-york", NYC, 2024), ("lord-howe", "Australia/Lord_Howe", 2024),
            ("chatham", "Pacific/Chatham", 2024), ("santiago", "America/Santiago", 2024),
            ("beirut", "Asia/Beirut", 2024)]
    reduced = [("berlin", BER, 2025), ("new-york", NYC, 2025), ("london", "Europe/London", 2024),
               ("sydney", "Australia/Sydney", 2024), ("havana", "America/Havana", 2024),
               ("troll", "Antarctica/Troll", 2024), ("cairo", "Africa/Cairo", 2024)]
    for slug, tz, year, is_full in [(*f, True) for f in full] + [(*r, False) for r in reduced]:
        trs = transitions(tz, year)
        assert len(trs) == 2, (tz, year, trs)
        for t, o1, o2 in trs:
            before = (t + o1).replace(tzinfo=None)  # wall clock just before the switch
            after = (t + o2).replace(tzinfo=None)   # wall clock just after it
            spring = o2 > o1
            season = "spring" if spring else "fall"
            lo, hi = (before, after) if spring else (after, before)  # gap or overlap window
            mid = lo + (hi - lo) / 2
            mid = mid.replace(second=0, microsecond=0)
            what = "gap" if spring else "overlap"
            p = f"{slug}-{season}" + ("" if year == 2024 else f"-{year}")
            day = lo.date()
            midnight = lambda d: datetime(d.year, d.month, d.day)  # noqa: E731
            d2 = midnight(day - timedelta(days=2))
            d1 = midnight(day - timedelta(days=1))
            add(f"cron-{p}-{what}-{hhmm(mid)}",
                spec(tz, d2, cron=f"{mid.minute} {mid.hour} * * *"), 5)
            add(f"cron-{p}-hourly", spec(tz, lo - timedelta(hours=2), cron="0 * * * *"), 6)
            add(f"cron-{p}-every-30", spec(tz, lo - timedelta(hours=1), cron="*/30 * * * *"), 10)
            add(f"cron-{p}-midnight", spec(tz, d2, cron="0 0 * * *"), 5)
            add(f"interval-{p}-1h", spec(tz, lo - timedelta(hours=3), interval="1h"), 8)
            if not is_full:
                continue
            add(f"cronfields-{p}-{what}-{hhmm(mid)}",
                spec(tz, d2, cronFields={"hour": str(mid.hour), "minute": str(mid.minute)}), 5)
            add(f"cron-{p}-{what}-edge-{hhmm(lo)}",
                spec(tz, d2, cron=f"{lo.minute} {lo.hour} * * *"), 5)
            add(f"cron-{p}-every-20", spec(tz, lo - timedelta(hours=1), cron="*/20 * * * *"), 12)
            add(f"cron-{p}-every-15", spec(tz, lo - timedelta(minutes=30), cron="*/15 * * * *"), 12)
            hours = sorted({(lo + timedelta(hours=k)).hour for k in range(-1, 3)} |
                           {(hi + timedelta(hours=1)).hour})
            hexpr = ",".join(str(h) for h in hours)
            add(f"cron-{p}-hour-list-{'-'.join(str(h) for h in hours)}",
                spec(tz, d1, cron=f"0,30 {hexpr} * * *"), 20)
            add(f"cron6-{p}-every-10-min", spec(tz, lo - timedelta(minutes=30), cron="0 */10 * * * *"), 12)
            add(f"interval-{p}-45m", spec(tz, lo - timedelta(hours=3), interval="45m"), 8)
            add(f"interval-{p}-1d", spec(tz, datetime.combine(day - timedelta(days=2), mid.time()),
                                          interval="1d"), 5)
            add(f"calint-{p}-days-1-{what}-{hhmm(mid)}",
                spec(tz, d2, calendarInterval={"days": 1, "hour": mid.hour, "minute": mid.minute}), 5)
            add(f"calint-{p}-days-1-midnight", spec(tz, d2, calendarInterval={"days": 1}), 5)
            if not spring:
                add(f"cron-{p}-start-second-fold-every-20",
                    spec(tz, lo, start_fold=1, cron="*/20 * * * *"), 6)
                add(f"cron-{p}-start-second-fold-{what}-{hhmm(mid)}",
                    spec(tz, lo, start_fold=1, cron=f"{mid.minute} {mid.hour} * * *"), 3)
                add(f"cron-{p}-end-in-second-fold",
                    spec(tz, lo - timedelta(hours=1), end=mid, end_fold=1, cron="*/20 * * * *"), 20)
                add(f"interval-{p}-end-in-second-fold",
                    spec(tz, lo - timedelta(hours=2), end=mid, end_fold=1, interval="30m"), 20)
    # specific extras
    add("cronfields-berlin-spring-last-sun-march-0230",
        spec(BER, "2024-01-01T00:00:00", cronFields={"month": "3", "day": "last sun", "hour": "2",
                                                     "minute": "30"}), 3)
    add("cronfields-berlin-fall-last-sun-october-0230",
        spec(BER, "2024-01-01T00:00:00", cronFields={"month": "10", "day": "last sun", "hour": "2",
                                                     "minute": "30"}), 4)
    add("cron-berlin-spring-every-20-hours-1-3",
        spec(BER, "2024-03-30T00:00:00", cron="*/20 1-3 * * *"), 12)
    add("cron-new-york-spring-weekdays-0230",
        spec(NYC, "2024-03-01T00:00:00", cron="30 2 * * *"), 20)
    add("cron-berlin-year-of-0230", spec(BER, "2024-03-25T00:00:00", cron="30 2 * * sun"), 6)
    add("cron-santiago-spring-2025-midnight", spec("America/Santiago", "2025-09-05T00:00:00",
                                                   cron="0 0 * * *"), 5)
    add("cron-santiago-spring-hour-0-fields",
        spec("America/Santiago", "2024-09-06T00:00:00", cronFields={"hour": "0"}), 5)
    # Pacific/Apia skipped 2011-12-30 entirely (UTC-10 -> UTC+14)
    APIA = "Pacific/Apia"
    add("cron-apia-2011-daily-noon", spec(APIA, "2011-12-28T00:00:00", cron="0 12 * * *"), 5)
    add("cron-apia-2011-hourly", spec(APIA, "2011-12-29T21:00:00", cron="0 * * * *"), 6)
    add("cron-apia-2011-midnight", spec(APIA, "2011-12-28T00:00:00", cron="0 0 * * *"), 5)
    add("cronfields-apia-2011-dec-30", spec(APIA, "2011-12-01T00:00:00",
                                            cronFields={"year": "2011", "month": "12", "day": "30"}), 3)
    add("cron-apia-2011-dow-fri", spec(APIA, "2011-12-20T00:00:00", cron="0 9 * * fri"), 4)
    add("interval-apia-2011-1d", spec(APIA, "2011-12-28T12:00:00", interval="1d"), 5)
    add("interval-apia-2011-1h", spec(APIA, "2011-12-29T22:00:00", interval="1h"), 5)


def main() -> None:
    crontab_cases()
    cronfields_cases()
    interval_cases()
    date_cases()
    calint_cases()
    combo_cases()
    other_tz_cases()
    dst_cases()

    cases = [run_case(name, trig, count) for name, (trig, count) in sorted(CASES.items())]
    doc = {
        "generator": "tests/conformance/generate.py",
        "apscheduler": importlib.metadata.version("apscheduler"),
        "python": platform.python_version(),
        "tzdata": tzdata.IANA_VERSION,
        "cases": cases,
    }
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    OUT.write_text(text)

    # sanity checks and a summary
    loaded = json.loads(OUT.read_text())
    names = [c["name"] for c in loaded["cases"]]
    assert len(names) == len(set(names))
    kinds = Counter()
    errors = Counter()
    exhausted = 0
    for c in loaded["cases"]:
        k = next(k for k in ("cron", "cronFields", "interval", "date", "calendarInterval", "anyOf",
                             "allOf") if k in c["trigger"])
        kinds[k] += 1
        if c["error"]:
            errors[c["error"].split(":")[0]] += 1
        exhausted += c["exhausted"]
        assert len(c["expected"]) == len(c["expected_utc"]) <= c["count"]
    print(f"wrote {OUT.relative_to(REPO)}: {len(names)} cases "
          f"(apscheduler {doc['apscheduler']}, python {doc['python']}, tzdata {doc['tzdata']})")
    for k, v in sorted(kinds.items()):
        print(f"  {k:17} {v}")
    print(f"  errors: {sum(errors.values())} {dict(sorted(errors.items()))}; exhausted: {exhausted}")


if __name__ == "__main__":
    main()
