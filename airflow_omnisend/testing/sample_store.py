"""A deterministic sample shop in the reference schema, for the demo, the tests and the benchmarks.

``airflow-omnisend sample-store --db shop.sqlite --orders 2000 --seed 7`` writes a SQLite shop; the same
arguments always give byte-identical data (one ``random.Random(seed)`` drawn in a fixed order, rows inserted
in a fixed order, one transaction). :func:`build_sample_store` does the same from Python, and can load the
data into PostgreSQL through a DB-API connection (the tables are created in its current schema, times as
``timestamptz``).

What is in it: orders spread over ``days`` store-local days with 1-6 lines each; most are paid (some hours
later, some on a later day), most paid orders are fulfilled (with tracking), a few are canceled (with a
reason; paid ones are refunded), some fulfilled ones are partly refunded (with refund lines), up to two
weeks after the last day. Times are ISO text with an explicit offset, half in UTC (``Z``) and half in the
store's local offset, with whole seconds, milliseconds or microseconds. Names are Lithuanian, Latin, CJK.
About 1% of the orders are dirty on purpose: no contact, a currency that is not ISO 4217, a negative price.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_omnisend.events.names import CANCELED, FULFILLED, PAID, PLACED, REFUNDED
from airflow_omnisend.events.partition import PartitionWindow, load_timezone, parse_partition_day
from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator

DEFAULT_START = date(2024, 3, 25)  # 7 days from here include Europe/Vilnius's DST change (2024-03-31)
DEFAULT_TIMEZONE = "Europe/Vilnius"

#: share of orders that are dirty on purpose, by kind of dirt
DIRTY_SHARES = {"no_contact": 0.004, "bad_currency": 0.003, "negative_price": 0.003}

_FIRST = (
    ("Jonas", "jonas"),
    ("Žydrūnas", "zydrunas"),
    ("Šarūnas", "sarunas"),
    ("Ąžuolas", "azuolas"),
    ("Rūta", "ruta"),
    ("Eglė", "egle"),
    ("Gintarė", "gintare"),
    ("Aušra", "ausra"),
    ("Mindaugas", "mindaugas"),
    ("Vytautas", "vytautas"),
    ("Dalia", "dalia"),
    ("Emma", "emma"),
    ("Liam", "liam"),
    ("Øyvind", "oyvind"),
    ("José", "jose"),
    ("芳", "fang"),
    ("伟", "wei"),
    ("花子", "hanako"),
)
_LAST = (
    ("Kazlauskas", "kazlauskas"),
    ("Jankauskas", "jankauskas"),
    ("Petrauskienė", "petrauskiene"),
    ("Žukauskas", "zukauskas"),
    ("Šimkus", "simkus"),
    ("Vaitkevičiūtė", "vaitkeviciute"),
    ("Müller", "muller"),
    ("García", "garcia"),
    ("Smith", "smith"),
    ("王", "wang"),
    ("李", "li"),
    ("佐藤", "sato"),
)
_CITIES = (
    ("Gedimino pr. 12", "Vilnius", "LT-01103", "LT"),
    ("Laisvės al. 45", "Kaunas", "LT-44309", "LT"),
    ("Tiltų g. 3", "Klaipėda", "LT-91246", "LT"),
    ("Brīvības iela 21", "Rīga", "LV-1010", "LV"),
    ("Viru 5", "Tallinn", "10140", "EE"),
    ("ul. Marszałkowska 10", "Warszawa", "00-590", "PL"),
    ("Hauptstraße 7", "Berlin", "10115", "DE"),
    ("銀座 4-5-6", "東京", "104-0061", "JP"),
)
_PRODUCTS = (
    ("Lininė staltiesė", "Linas", "Namai"),
    ("Medaus stiklainis", "Bitininkas", "Maistas"),
    ("Vilnonės kojinės", "Šiltai", "Drabužiai"),
    ("Gintaro vėrinys", "Baltijos gintaras", "Papuošalai"),
    ("Ceramic mug", "Clayworks", "Home"),
    ("Trail running shoes", "Northpeak", "Shoes"),
    ("抹茶 tea set", "京都茶舗", "Tea"),
    ("Notebook A5", "Paperie", "Office"),
    ("Wool scarf", "Nordkind", "Clothing"),
    ("Rye bread box", "Duonelė", "Kitchen"),
)
_VARIANTS = ("S", "M", "L", "Žalia", "Mėlyna", "Natural", "200 g", "500 g")
_SHIPPING = (
    ("LP Express paštomatas", 299),
    ("DPD kurjeris", 499),
    ("Omniva", 349),
    ("Atsiėmimas parduotuvėje", 0),
)
_COURIERS = ("LP Express", "DPD", "Omniva", "UPS")
_PAYMENTS = ("card", "card", "card", "paypal", "bank transfer")
_CODES = ("VASARA10", "WELCOME5", "SUMMER20")
_CANCEL_REASONS = (
    "customer changed mind",
    "payment declined",
    "out of stock",
    "Klientas persigalvojo",
    "fraud suspected",
)
_NOTES = ("Prašome skambinti prieš pristatant", "Gift wrap, please", "请尽快发货", "Leave at the door")
_REFUND_REASONS = ("damaged", "wrong size", "Netiko dydis", "late delivery")

_ORDER_SQL_COLUMNS = (
    "order_id, order_number, customer_id, email, phone, first_name, last_name, currency, subtotal_price,"
    " total_discount, total_tax, shipping_price, total_price, discount_code, payment_method, shipping_method,"
    " note, billing_address1, billing_city, billing_zip, billing_country_code, created_at, paid_at,"
    " fulfilled_at, tracking_code, courier_title, courier_url, canceled_at, cancel_reason"
)


@dataclass
class SampleStoreSummary:
    """What :func:`build_sample_store` wrote, and how many events of each name the store holds."""

    target: str
    timezone: str
    start: date
    days: int
    seed: int
    orders: int = 0
    lines: int = 0
    refunds: int = 0
    refund_lines: int = 0
    dirty: dict[str, int] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    first_event_day: date | None = None
    last_event_day: date | None = None
    seconds: float = 0.0

    @property
    def total_events(self) -> int:
        return sum(self.events.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "timezone": self.timezone,
            "start": self.start.isoformat(),
            "days": self.days,
            "seed": self.seed,
            "orders": self.orders,
            "lines": self.lines,
            "refunds": self.refunds,
            "refund_lines": self.refund_lines,
            "dirty": dict(self.dirty),
            "events": dict(self.events),
            "total_events": self.total_events,
            "first_event_day": self.first_event_day.isoformat() if self.first_event_day else None,
            "last_event_day": self.last_event_day.isoformat() if self.last_event_day else None,
            "seconds": round(self.seconds, 3),
        }


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


class _Generator:
    """Draws the store from one seeded ``random.Random``; every draw happens in a fixed order."""

    def __init__(self, seed: int, tz_name: str, start: date, days: int) -> None:
        self.rng = random.Random(seed)
        self.tz = load_timezone(tz_name)
        self.begin = PartitionWindow.for_day(start, tz_name).start_utc
        self.span_us = int(
            (PartitionWindow.for_day(start + timedelta(days=days - 1), tz_name).end_utc - self.begin)
            / timedelta(microseconds=1)
        )
        self.first_local: date | None = None
        self.last_local: date | None = None
        rng = self.rng
        self.catalog = []
        for i in range(120):
            title, vendor, category = _PRODUCTS[i % len(_PRODUCTS)]
            variant = _VARIANTS[rng.randrange(len(_VARIANTS))]
            price = rng.randrange(199, 12000)
            pid = f"P{1001 + i}"
            self.catalog.append(
                (
                    pid,
                    f"{pid}-V{rng.randrange(1, 4)}",
                    f"SKU-{10000 + i * 7}",
                    f"{title} {i // len(_PRODUCTS) + 1}",
                    f"{title} - {variant}",
                    vendor,
                    f"C{(i % len(_PRODUCTS)) + 1}",
                    category,
                    price,
                    f"https://shop.example/products/{pid}",
                    f"https://cdn.shop.example/img/{pid}.jpg",
                )
            )

    def instant_text(self, instant: datetime) -> str:
        """ISO text with an explicit offset: UTC 'Z' or the store's local offset, 0/3/6 fraction digits."""
        rng = self.rng
        precision = rng.random()
        if precision < 0.5:
            instant = instant.replace(microsecond=0)
            spec = "seconds"
        elif precision < 0.75:
            instant = instant.replace(microsecond=instant.microsecond // 1000 * 1000)
            spec = "milliseconds"
        else:
            spec = "microseconds"
        local = instant.astimezone(self.tz)
        day = local.date()
        if self.first_local is None or day < self.first_local:
            self.first_local = day
        if self.last_local is None or day > self.last_local:
            self.last_local = day
        if rng.random() < 0.5:
            return instant.isoformat(timespec=spec).replace("+00:00", "Z")
        return local.isoformat(timespec=spec)


def _sql(target_dialect: str, text: str) -> str:
    return text.replace("?", "%s") if target_dialect == "postgres" else text


def schema_ddl(dialect: str = "sqlite") -> str:
    """The reference shop schema (packaged copy); on PostgreSQL the times are ``timestamptz``."""
    ddl = resources.files("airflow_omnisend.sources").joinpath("reference_shop_schema.sql").read_text("utf-8")
    if dialect == "postgres":
        ddl = ddl.replace(" TIMESTAMP ", " TIMESTAMPTZ ").replace(" TIMESTAMP,", " TIMESTAMPTZ,")
    return ddl


def _statements(ddl: str) -> list[str]:
    body = "\n".join(line.split("--", 1)[0] for line in ddl.splitlines())
    return [s.strip() for s in body.split(";") if s.strip()]


def build_sample_store(
    db_path_or_dbapi_conn: str | Path | Any,
    orders: int,
    seed: int,
    timezone: str = DEFAULT_TIMEZONE,
    start: date | str = DEFAULT_START,
    days: int = 7,
    dialect: str = "sqlite",
    *,
    replace: bool = False,
) -> SampleStoreSummary:
    """Write a deterministic sample store; return what was written.

    :param db_path_or_dbapi_conn: a SQLite file path (created; an existing file is an error unless
        ``replace``), or an open DB-API connection (SQLite or PostgreSQL; the tables must not exist yet,
        and the data is committed).
    :param orders: how many orders (>= 1).
    :param start: the first store-local day orders are placed on; ``days`` days from there.
    :param dialect: ``"sqlite"`` or ``"postgres"``, for a DB-API connection.
    """
    if not isinstance(orders, int) or orders < 1:
        raise OmnisendConfigError(f"orders must be a positive number, got {orders!r}")
    if not isinstance(days, int) or days < 1:
        raise OmnisendConfigError(f"days must be a positive number, got {days!r}")
    if dialect not in ("sqlite", "postgres"):
        raise OmnisendConfigError(f"dialect must be 'sqlite' or 'postgres', got {dialect!r}")
    start_day = parse_partition_day(start)
    load_timezone(timezone)
    started = time.perf_counter()

    owned = isinstance(db_path_or_dbapi_conn, (str, Path))
    if owned:
        path = Path(db_path_or_dbapi_conn)
        if path.exists():
            if not replace:
                raise OmnisendConfigError(
                    f"{path} already exists; pass replace=True (--replace) to overwrite it"
                )
            path.unlink()
        conn: Any = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN")
        target = str(path)
        dialect = "sqlite"
    else:
        conn = db_path_or_dbapi_conn
        target = f"{dialect} connection"
    summary = SampleStoreSummary(target=target, timezone=timezone, start=start_day, days=days, seed=seed)
    try:
        cur = conn.cursor()
        for statement in _statements(schema_ddl(dialect)):
            cur.execute(statement)
        gen = _Generator(seed, timezone, start_day, days)
        inserts = (
            _sql(dialect, f"INSERT INTO orders ({_ORDER_SQL_COLUMNS}) VALUES ({', '.join('?' * 29)})"),
            _sql(dialect, f"INSERT INTO order_lines VALUES ({', '.join('?' * 15)})"),
            _sql(dialect, "INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?)"),
            _sql(dialect, "INSERT INTO refund_lines VALUES (?, ?, ?, ?)"),
        )
        for chunk in _generate(gen, orders, summary):  # in chunks: memory stays small for any size
            for insert, rows in zip(inserts, chunk, strict=True):
                if rows:
                    cur.executemany(insert, rows)
        cur.close()
        if owned:
            conn.execute("COMMIT")
        else:
            conn.commit()
    except BaseException:
        if owned:
            conn.close()
            Path(db_path_or_dbapi_conn).unlink(missing_ok=True)
        else:
            conn.rollback()
        raise
    if owned:
        conn.close()
    summary.first_event_day, summary.last_event_day = gen.first_local, gen.last_local
    summary.seconds = time.perf_counter() - started
    return summary


_CHUNK = 5000
_Rows = list[tuple[Any, ...]]


def _generate(
    gen: _Generator, n: int, summary: SampleStoreSummary
) -> Iterator[tuple[_Rows, _Rows, _Rows, _Rows]]:
    """The rows of ``n`` orders, ``_CHUNK`` orders at a time: (orders, order_lines, refunds, refund_lines)."""
    rng = gen.rng
    rand, randrange, choice = rng.random, rng.randrange, rng.choice
    catalog = gen.catalog
    text = gen.instant_text

    customers: list[tuple[str | None, str | None, str | None, str, str, tuple[str, str, str, str]]] = []
    for c in range(max(10, n // 3)):
        first, first_ascii = _FIRST[randrange(len(_FIRST))]
        last, last_ascii = _LAST[randrange(len(_LAST))]
        email: str | None = f"{first_ascii}.{last_ascii}{c}@example.com"
        if rand() < 0.03:  # messy but valid after normalisation (trim, lower case)
            email = f"  {first_ascii.title()}.{last_ascii.upper()}{c}@Example.COM "
        phone: str | None = f"+3706{randrange(10**7):07d}" if rand() < 0.7 else None
        if phone is not None and rand() < 0.05:
            email = None
        customers.append((f"C{c + 1:06d}", email, phone, first, last, _CITIES[randrange(len(_CITIES))]))

    offsets = sorted(randrange(gen.span_us) for _ in range(n))
    order_rows: _Rows = []
    line_rows: _Rows = []
    refund_rows: _Rows = []
    refund_line_rows: _Rows = []
    events = dict.fromkeys((PLACED, PAID, FULFILLED, CANCELED, REFUNDED), 0)
    dirty = dict.fromkeys(DIRTY_SHARES, 0)
    hour = timedelta(hours=1)

    for i in range(n):
        order_id = f"SO-{i + 1:07d}"
        created = gen.begin + timedelta(microseconds=offsets[i])
        customer_id, email, phone, first, last, address = customers[randrange(len(customers))]
        if rand() < 0.1:
            customer_id = None  # guest checkout

        # lines
        count = choice((1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6))
        picked = rng.sample(range(len(catalog)), count)
        lines: list[list[Any]] = []
        subtotal = line_discounts = 0
        for number, p in enumerate(picked, start=1):
            pid, vid, sku, title, vtitle, vendor, cat_id, cat_title, price, url, image = catalog[p]
            qty = 1 if rand() < 0.75 else randrange(2, 4)
            discount = (price * qty) // 10 if rand() < 0.1 else 0
            subtotal += price * qty - discount
            line_discounts += discount
            lines.append(
                [
                    order_id,
                    number,
                    pid,
                    vid,
                    sku,
                    title,
                    vtitle,
                    vendor,
                    cat_id,
                    cat_title,
                    qty,
                    price,
                    discount,
                    url,
                    image,
                ]
            )
        code = choice(_CODES) if rand() < 0.12 else None
        code_discount = subtotal // 10 if code else 0
        shipping_method, shipping = _SHIPPING[randrange(len(_SHIPPING))]
        if subtotal >= 5000:
            shipping = 0
        total = subtotal - code_discount + shipping
        tax = round(total * 21 / 121)
        currency = "EUR" if rand() < 0.97 else "USD"

        # dirt
        roll = rand()
        kind = None
        if roll < DIRTY_SHARES["no_contact"]:
            kind = "no_contact"
            email = phone = None
        elif roll < DIRTY_SHARES["no_contact"] + DIRTY_SHARES["bad_currency"]:
            kind = "bad_currency"
            currency = choice(("EURO", "€", "XYZ"))
        elif roll < sum(DIRTY_SHARES.values()):
            kind = "negative_price"
            lines[0][11] = -lines[0][11]
        if kind:
            dirty[kind] += 1

        # lifecycle
        paid_at = fulfilled_at = canceled_at = None
        tracking = courier = courier_url = cancel_reason = None
        method = choice(_PAYMENTS)
        if rand() < 0.88:
            delay = timedelta(seconds=randrange(5, 600)) if rand() < 0.7 else hour * (1 + rand() * 29)
            paid_at = created + delay
        if rand() < 0.05:
            canceled_at = created + hour * (0.2 + rand() * 47.8)
            cancel_reason = choice(_CANCEL_REASONS)
            if paid_at is not None and paid_at > canceled_at:
                paid_at = None
        elif paid_at is not None and rand() < 0.85:
            fulfilled_at = paid_at + hour * (2 + rand() * 70)
            courier = choice(_COURIERS)
            tracking = f"{courier[:2].upper()}{randrange(10**9):09d}LT"
            courier_url = f"https://tracking.example/{courier.replace(' ', '-').lower()}/{tracking}"

        refunds: list[tuple[datetime, list[tuple[int, int, int]]]] = []
        if canceled_at is not None and paid_at is not None:
            refunds.append(
                (canceled_at + hour * rand() * 2, [(ln[1], ln[10], ln[10] * ln[11]) for ln in lines])
            )
        elif fulfilled_at is not None and rand() < 0.07:
            when = fulfilled_at + hour * (24 + rand() * 312)
            for ln in rng.sample(lines, 2 if rand() < 0.2 and len(lines) > 1 else 1):
                qty = randrange(1, ln[10] + 1)
                refunds.append((when, [(ln[1], qty, qty * ln[11])]))
                when += hour * (1 + rand() * 48)

        note = choice(_NOTES) if rand() < 0.05 else None
        address1, city, zip_code, country = address
        order_rows.append(
            (
                order_id,
                1001 + i,
                customer_id,
                email,
                phone,
                first,
                last,
                currency,
                _money(subtotal),
                _money(line_discounts + code_discount),
                _money(tax),
                _money(shipping),
                _money(total),
                code,
                method,
                shipping_method,
                note,
                address1,
                city,
                zip_code,
                country,
                text(created),
                text(paid_at) if paid_at else None,
                text(fulfilled_at) if fulfilled_at else None,
                tracking,
                courier,
                courier_url,
                text(canceled_at) if canceled_at else None,
                cancel_reason,
            )
        )
        for ln in lines:
            ln[11] = _money(ln[11])
            ln[12] = _money(ln[12])
            line_rows.append(tuple(ln))
        for r, (when, refunded) in enumerate(refunds, start=1):
            refund_id = f"RF-{i + 1:07d}-{r}"
            amount = sum(a for _n, _q, a in refunded)
            if canceled_at is not None:
                amount = total
            refund_rows.append(
                (
                    refund_id,
                    order_id,
                    text(when),
                    _money(amount),
                    _money(round(amount * 21 / 121)),
                    choice(_REFUND_REASONS),
                )
            )
            for number, qty, line_amount in refunded:
                refund_line_rows.append((refund_id, number, qty, _money(line_amount)))
        events[PLACED] += 1
        events[PAID] += paid_at is not None
        events[FULFILLED] += fulfilled_at is not None
        events[CANCELED] += canceled_at is not None
        events[REFUNDED] += len(refunds)
        if len(order_rows) >= _CHUNK or i == n - 1:
            summary.orders += len(order_rows)
            summary.lines += len(line_rows)
            summary.refunds += len(refund_rows)
            summary.refund_lines += len(refund_line_rows)
            yield order_rows, line_rows, refund_rows, refund_line_rows
            order_rows, line_rows, refund_rows, refund_line_rows = [], [], [], []

    summary.events, summary.dirty = events, dirty


# -- CLI ----------------------------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = "Write a deterministic sample shop (SQLite, reference schema)."
    parser.add_argument("--db", required=True, help="SQLite file to write")
    parser.add_argument("--orders", type=int, required=True, help="number of orders")
    parser.add_argument("--seed", type=int, required=True, help="random seed (same seed -> same data)")
    parser.add_argument(
        "--timezone", default=DEFAULT_TIMEZONE, help=f"store timezone (default {DEFAULT_TIMEZONE})"
    )
    parser.add_argument(
        "--start", default=DEFAULT_START.isoformat(), help="first local day, YYYY-MM-DD (default %(default)s)"
    )
    parser.add_argument("--days", type=int, default=7, help="number of days with new orders (default 7)")
    parser.add_argument("--replace", action="store_true", help="overwrite the file if it exists")


def run(args: argparse.Namespace) -> int:
    try:
        summary = build_sample_store(
            args.db,
            args.orders,
            args.seed,
            timezone=args.timezone,
            start=args.start,
            days=args.days,
            replace=args.replace,
        )
    except OmnisendConfigError as exc:
        print(f"sample-store: {exc}", file=sys.stderr)
        return 2
    events = ", ".join(f"{name}={count}" for name, count in summary.events.items())
    dirty = ", ".join(f"{name}={count}" for name, count in summary.dirty.items())
    print(
        f"wrote {summary.orders} orders, {summary.lines} lines, {summary.refunds} refunds "
        f"to {summary.target} "
        f"({summary.timezone}, events on {summary.first_event_day}..{summary.last_event_day}) in "
        f"{summary.seconds:.1f}s; events: {events}; dirty orders: {dirty}"
    )
    return 0
