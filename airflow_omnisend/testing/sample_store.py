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
import re
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_omnisend.events.names import CANCELED, EVENT_NAMES, FULFILLED, PAID, PLACED, REFUNDED
from airflow_omnisend.events.partition import PartitionWindow, load_timezone, parse_partition_day
from airflow_omnisend.exceptions import OmnisendConfigError

if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterator, Sequence

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
    return text.replace("?", "%s") if target_dialect in ("postgres", "mysql") else text


_ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def _mysql_row(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row for MySQL/MariaDB: its instants as naive UTC (``DATETIME`` holds no offset)."""
    return tuple(
        datetime.fromisoformat(v).astimezone(UTC).replace(tzinfo=None)
        if type(v) is str and _ISO_INSTANT.match(v)
        else v
        for v in row
    )


def schema_ddl(dialect: str = "sqlite") -> str:
    """The reference shop schema (packaged copy); on PostgreSQL the times are ``timestamptz``."""
    ddl = resources.files("airflow_omnisend.sources").joinpath("reference_shop_schema.sql").read_text("utf-8")
    if dialect == "postgres":
        ddl = ddl.replace(" TIMESTAMP ", " TIMESTAMPTZ ").replace(" TIMESTAMP,", " TIMESTAMPTZ,")
    if dialect == "mysql":  # keys need a length; money two decimals; UTC DATETIME; byte-ordered text
        ddl = re.sub(r"(order_id|refund_id)(\s+)TEXT", r"\1\2VARCHAR(191)", ddl)
        ddl = ddl.replace(" NUMERIC ", " DECIMAL(14,2) ").replace(" TIMESTAMP", " DATETIME(6)")
        ddl = ddl.replace("\n);", "\n) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;")
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
    start_day = _check_arguments(orders, days, dialect, start, timezone)
    started = time.perf_counter()
    owned = isinstance(db_path_or_dbapi_conn, (str, Path))
    if owned:
        path = Path(db_path_or_dbapi_conn)
        conn: Any = _create_sqlite_file(path, replace=replace)
        target, dialect = str(path), "sqlite"
    else:
        conn = db_path_or_dbapi_conn
        target = f"{dialect} connection"
    summary = SampleStoreSummary(target=target, timezone=timezone, start=start_day, days=days, seed=seed)
    try:
        gen = _Generator(seed, timezone, start_day, days)
        _write_store(conn.cursor(), dialect, gen, orders, summary)
        _commit(conn, owned=owned)
    except BaseException:
        _discard(conn, db_path_or_dbapi_conn, owned=owned)
        raise
    if owned:
        conn.close()
    summary.first_event_day, summary.last_event_day = gen.first_local, gen.last_local
    summary.seconds = time.perf_counter() - started
    return summary


def _check_arguments(orders: int, days: int, dialect: str, start: date | str, timezone: str) -> date:
    """The first store-local day, once every argument of :func:`build_sample_store` is known to be usable."""
    if not isinstance(orders, int) or orders < 1:
        raise OmnisendConfigError(f"orders must be a positive number, got {orders!r}")
    if not isinstance(days, int) or days < 1:
        raise OmnisendConfigError(f"days must be a positive number, got {days!r}")
    if dialect not in ("sqlite", "postgres", "mysql"):
        raise OmnisendConfigError(f"dialect must be 'sqlite', 'postgres' or 'mysql', got {dialect!r}")
    start_day = parse_partition_day(start)
    load_timezone(timezone)
    return start_day


def _create_sqlite_file(path: Path, *, replace: bool) -> sqlite3.Connection:
    """A new SQLite file at ``path`` (an existing one only when ``replace``), in an open transaction."""
    if path.exists():
        if not replace:
            raise OmnisendConfigError(f"{path} already exists; pass replace=True (--replace) to overwrite it")
        path.unlink()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    return conn


def _write_store(cur: Any, dialect: str, gen: _Generator, orders: int, summary: SampleStoreSummary) -> None:
    """Create the reference schema and insert ``orders`` orders drawn by ``gen``; close the cursor."""
    for statement in _statements(schema_ddl(dialect)):
        cur.execute(statement)
    inserts = (
        _sql(dialect, f"INSERT INTO orders ({_ORDER_SQL_COLUMNS}) VALUES ({', '.join('?' * 29)})"),
        _sql(dialect, f"INSERT INTO order_lines VALUES ({', '.join('?' * 15)})"),
        _sql(dialect, "INSERT INTO refunds VALUES (?, ?, ?, ?, ?, ?)"),
        _sql(dialect, "INSERT INTO refund_lines VALUES (?, ?, ?, ?)"),
    )
    for chunk in _generate(gen, orders, summary):  # in chunks: memory stays small for any size
        for insert, rows in zip(inserts, chunk, strict=True):
            if rows:
                cur.executemany(insert, [_mysql_row(r) for r in rows] if dialect == "mysql" else rows)
    cur.close()


def _commit(conn: Any, *, owned: bool) -> None:
    """Commit the store: the file's explicit transaction, or the given connection's."""
    if owned:
        conn.execute("COMMIT")
    else:
        conn.commit()


def _discard(conn: Any, db_path_or_dbapi_conn: str | Path | Any, *, owned: bool) -> None:
    """Undo a store that failed half-way: delete the file made for it, or roll the connection back."""
    if owned:
        conn.close()
        Path(db_path_or_dbapi_conn).unlink(missing_ok=True)
    else:
        conn.rollback()


_CHUNK = 5000
_Rows = list[tuple[Any, ...]]
#: (customer_id, email, phone, first name, last name, (address1, city, zip, country code))
_Customer = tuple[str | None, str | None, str | None, str, str, tuple[str, str, str, str]]
#: (refund time, [(line number, quantity, amount in cents)])
_Refund = tuple[datetime, list[tuple[int, int, int]]]


@dataclass
class _Chunk:
    """The rows of up to ``_CHUNK`` orders, one list per table, in insertion order."""

    orders: _Rows = field(default_factory=list)
    lines: _Rows = field(default_factory=list)
    refunds: _Rows = field(default_factory=list)
    refund_lines: _Rows = field(default_factory=list)

    def tables(self) -> tuple[_Rows, _Rows, _Rows, _Rows]:
        return self.orders, self.lines, self.refunds, self.refund_lines


@dataclass
class _Tally:
    """Events of each name and dirty orders of each kind, counted as the orders are drawn."""

    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_NAMES, 0))
    dirty: dict[str, int] = field(default_factory=lambda: dict.fromkeys(DIRTY_SHARES, 0))


@dataclass
class _Lifecycle:
    """What happened to one order after it was placed (``None``: it did not happen)."""

    payment_method: str
    paid_at: datetime | None = None
    fulfilled_at: datetime | None = None
    canceled_at: datetime | None = None
    tracking: str | None = None
    courier: str | None = None
    courier_url: str | None = None
    cancel_reason: str | None = None


def _generate(
    gen: _Generator, n: int, summary: SampleStoreSummary
) -> Iterator[tuple[_Rows, _Rows, _Rows, _Rows]]:
    """The rows of ``n`` orders, ``_CHUNK`` orders at a time: (orders, order_lines, refunds, refund_lines)."""
    customers = _draw_customers(gen.rng, max(10, n // 3))
    offsets = sorted(gen.rng.randrange(gen.span_us) for _ in range(n))
    tally = _Tally()
    chunk = _Chunk()
    for i in range(n):
        created = gen.begin + timedelta(microseconds=offsets[i])
        _draw_order(gen, i, created, customers, chunk, tally)
        if len(chunk.orders) >= _CHUNK or i == n - 1:
            summary.orders += len(chunk.orders)
            summary.lines += len(chunk.lines)
            summary.refunds += len(chunk.refunds)
            summary.refund_lines += len(chunk.refund_lines)
            yield chunk.tables()
            chunk = _Chunk()
    summary.events, summary.dirty = tally.events, tally.dirty


def _draw_customers(rng: random.Random, count: int) -> list[_Customer]:
    """``count`` customers; a few with messy e-mails (valid once trimmed and lower-cased), some phone-only."""
    rand, randrange = rng.random, rng.randrange
    customers: list[_Customer] = []
    for c in range(count):
        first, first_ascii = _FIRST[randrange(len(_FIRST))]
        last, last_ascii = _LAST[randrange(len(_LAST))]
        email: str | None = f"{first_ascii}.{last_ascii}{c}@example.com"
        if rand() < 0.03:  # messy but valid after normalisation (trim, lower case)
            email = f"  {first_ascii.title()}.{last_ascii.upper()}{c}@Example.COM "
        phone: str | None = f"+3706{randrange(10**7):07d}" if rand() < 0.7 else None
        if phone is not None and rand() < 0.05:
            email = None
        customers.append((f"C{c + 1:06d}", email, phone, first, last, _CITIES[randrange(len(_CITIES))]))
    return customers


def _draw_order(
    gen: _Generator, i: int, created: datetime, customers: list[_Customer], chunk: _Chunk, tally: _Tally
) -> None:
    """Draw order number ``i``, placed at ``created``: append its rows to ``chunk``, count it in ``tally``."""
    rng = gen.rng
    rand, randrange, choice = rng.random, rng.randrange, rng.choice
    order_id = f"SO-{i + 1:07d}"
    customer_id, email, phone, first, last, address = customers[randrange(len(customers))]
    if rand() < 0.1:
        customer_id = None  # guest checkout
    lines, subtotal, line_discounts = _draw_lines(rng, gen.catalog, order_id)
    code = choice(_CODES) if rand() < 0.12 else None
    code_discount = subtotal // 10 if code else 0
    shipping_method, shipping = _SHIPPING[randrange(len(_SHIPPING))]
    if subtotal >= 5000:
        shipping = 0
    total = subtotal - code_discount + shipping
    tax = round(total * 21 / 121)
    currency = "EUR" if rand() < 0.97 else "USD"
    kind, email, phone, currency = _draw_dirt(rng, lines, email, phone, currency)
    if kind:
        tally.dirty[kind] += 1
    life = _draw_lifecycle(rng, created)
    refunds = _draw_refunds(rng, lines, life)
    note = choice(_NOTES) if rand() < 0.05 else None
    address1, city, zip_code, country = address
    text = gen.instant_text  # draws too: the times are written in this order
    chunk.orders.append(
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
            life.payment_method,
            shipping_method,
            note,
            address1,
            city,
            zip_code,
            country,
            text(created),
            text(life.paid_at) if life.paid_at else None,
            text(life.fulfilled_at) if life.fulfilled_at else None,
            life.tracking,
            life.courier,
            life.courier_url,
            text(life.canceled_at) if life.canceled_at else None,
            life.cancel_reason,
        )
    )
    for ln in lines:
        ln[11] = _money(ln[11])
        ln[12] = _money(ln[12])
        chunk.lines.append(tuple(ln))
    _add_refund_rows(gen, i, order_id, refunds, total if life.canceled_at is not None else None, chunk)
    _count_events(tally.events, life, len(refunds))


def _draw_lines(
    rng: random.Random, catalog: list[tuple[Any, ...]], order_id: str
) -> tuple[list[list[Any]], int, int]:
    """1-6 ``order_lines`` rows (prices still in cents), the subtotal and the sum of the line discounts."""
    rand, randrange = rng.random, rng.randrange
    count = rng.choice((1, 1, 1, 2, 2, 2, 3, 3, 4, 5, 6))
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
    return lines, subtotal, line_discounts


def _draw_dirt(
    rng: random.Random, lines: list[list[Any]], email: str | None, phone: str | None, currency: str
) -> tuple[str | None, str | None, str | None, str]:
    """Whether this order is dirty on purpose (:data:`DIRTY_SHARES`): (kind or None, email, phone, currency).

    A negative price is written into the first line in place.
    """
    roll = rng.random()
    kind = None
    if roll < DIRTY_SHARES["no_contact"]:
        kind = "no_contact"
        email = phone = None
    elif roll < DIRTY_SHARES["no_contact"] + DIRTY_SHARES["bad_currency"]:
        kind = "bad_currency"
        currency = rng.choice(("EURO", "€", "XYZ"))
    elif roll < sum(DIRTY_SHARES.values()):
        kind = "negative_price"
        lines[0][11] = -lines[0][11]
    return kind, email, phone, currency


def _draw_lifecycle(rng: random.Random, created: datetime) -> _Lifecycle:
    """Payment (most orders, minutes or hours later), then a cancellation or a fulfilment (with tracking)."""
    rand, randrange, choice = rng.random, rng.randrange, rng.choice
    hour = timedelta(hours=1)
    life = _Lifecycle(payment_method=choice(_PAYMENTS))
    if rand() < 0.88:
        delay = timedelta(seconds=randrange(5, 600)) if rand() < 0.7 else hour * (1 + rand() * 29)
        life.paid_at = created + delay
    if rand() < 0.05:
        life.canceled_at = created + hour * (0.2 + rand() * 47.8)
        life.cancel_reason = choice(_CANCEL_REASONS)
        if life.paid_at is not None and life.paid_at > life.canceled_at:
            life.paid_at = None
    elif life.paid_at is not None and rand() < 0.85:
        life.fulfilled_at = life.paid_at + hour * (2 + rand() * 70)
        life.courier = courier = choice(_COURIERS)
        life.tracking = tracking = f"{courier[:2].upper()}{randrange(10**9):09d}LT"
        life.courier_url = f"https://tracking.example/{courier.replace(' ', '-').lower()}/{tracking}"
    return life


def _draw_refunds(rng: random.Random, lines: list[list[Any]], life: _Lifecycle) -> list[_Refund]:
    """A paid, canceled order is refunded in full; a few fulfilled ones get one or two partial refunds."""
    rand, randrange = rng.random, rng.randrange
    hour = timedelta(hours=1)
    refunds: list[_Refund] = []
    if life.canceled_at is not None and life.paid_at is not None:
        refunds.append(
            (life.canceled_at + hour * rand() * 2, [(ln[1], ln[10], ln[10] * ln[11]) for ln in lines])
        )
    elif life.fulfilled_at is not None and rand() < 0.07:
        when = life.fulfilled_at + hour * (24 + rand() * 312)
        for ln in rng.sample(lines, 2 if rand() < 0.2 and len(lines) > 1 else 1):
            qty = randrange(1, ln[10] + 1)
            refunds.append((when, [(ln[1], qty, qty * ln[11])]))
            when += hour * (1 + rand() * 48)
    return refunds


def _add_refund_rows(
    gen: _Generator, i: int, order_id: str, refunds: list[_Refund], full_amount: int | None, chunk: _Chunk
) -> None:
    """Append the refund rows of order ``i``; a canceled order (``full_amount`` given) refunds its total."""
    for r, (when, refunded) in enumerate(refunds, start=1):
        refund_id = f"RF-{i + 1:07d}-{r}"
        amount = sum(a for _n, _q, a in refunded) if full_amount is None else full_amount
        chunk.refunds.append(
            (
                refund_id,
                order_id,
                gen.instant_text(when),
                _money(amount),
                _money(round(amount * 21 / 121)),
                gen.rng.choice(_REFUND_REASONS),
            )
        )
        for number, qty, line_amount in refunded:
            chunk.refund_lines.append((refund_id, number, qty, _money(line_amount)))


def _count_events(events: dict[str, int], life: _Lifecycle, refunds: int) -> None:
    """Count one order's events: always placed, the lifecycle steps it had, one per refund."""
    events[PLACED] += 1
    events[PAID] += life.paid_at is not None
    events[FULFILLED] += life.fulfilled_at is not None
    events[CANCELED] += life.canceled_at is not None
    events[REFUNDED] += refunds


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
