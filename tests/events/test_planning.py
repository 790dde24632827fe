"""Chunk planning: bodies within both limits, nothing lost or doubled, orders kept together and in
lifecycle order, deterministic, near-optimal packing on realistic files, bounded memory."""

from __future__ import annotations

import io
import tracemalloc
import zlib
from collections import Counter
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from plan_helpers import (
    NAMES,
    PROFILES,
    KeptBytes,
    allowed,
    check_run,
    event_line,
    run_plan,
    write_realistic_events,
)

from airflow_omnisend.events.body_format import ENVELOPE_BYTES, encode_body
from airflow_omnisend.events.chunk_plan import BatchLimits
from airflow_omnisend.events.names import lifecycle_rank
from airflow_omnisend.events.planning import (
    _content_span,
    _group_events,
    _index_events,
    _order_key,
    _Texts,
    _time_key,
    plan_batches,
)
from airflow_omnisend.exceptions import OmnisendConfigError, OmnisendInputError

if TYPE_CHECKING:
    import random


# --------------------------------------------------------------------------------------------------
# properties


@st.composite
def partitions(draw: st.DrawFn) -> tuple[list[bytes], BatchLimits, int, int]:
    limits = BatchLimits(
        max_items=draw(st.integers(1, 8)),
        max_payload_bytes=draw(st.integers(256, 2500)),
    )
    orders = draw(st.lists(st.sampled_from(["A", "B", "C", "D", "E", 7, None]), max_size=40))
    lines = []
    for number, order in enumerate(orders):
        minute = draw(st.integers(0, 59))
        offset = draw(st.sampled_from(["Z", "+02:00", "-05:30"]))
        lines.append(
            event_line(
                number,
                name=draw(st.sampled_from(NAMES)),
                order=order,
                when=f"2026-03-01T10:{minute:02d}:00{offset}",
                pad=draw(st.integers(0, 700)),
            )
        )
    if lines and draw(st.booleans()):
        lines.append(lines[draw(st.integers(0, len(lines) - 1))])  # a repeated line is two events
    return lines, limits, draw(st.integers(1, 5)), draw(st.integers(1, 4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partitions())
def test_planner_invariants(case: tuple[list[bytes], BatchLimits, int, int]) -> None:
    lines, limits, max_shards, min_bodies = case
    run = run_plan(lines, limits, max_shards=max_shards, min_bodies_per_shard=min_bodies)
    check_run(lines, limits, run)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(partitions(), st.randoms(use_true_random=False))
def test_plan_depends_on_content_not_line_order(
    case: tuple[list[bytes], BatchLimits, int, int], rnd: random.Random
) -> None:
    lines, limits, max_shards, min_bodies = case
    first = run_plan(lines, limits, max_shards=max_shards, min_bodies_per_shard=min_bodies)
    again = run_plan(lines, limits, max_shards=max_shards, min_bodies_per_shard=min_bodies)
    assert (again.plan, again.shards, again.dead) == (first.plan, first.shards, first.dead)
    shuffled = list(lines)
    rnd.shuffle(shuffled)
    other = run_plan(shuffled, limits, max_shards=max_shards, min_bodies_per_shard=min_bodies)
    assert other.plan.to_dict() == first.plan.to_dict()
    assert other.shards == first.shards
    assert Counter(other.dead.splitlines()) == Counter(first.dead.splitlines())


def _reference_groups(lines: list[bytes], limits: BatchLimits) -> list[list[int]]:
    """The planner's groups the plain way (a str per eventID, a dict of lists per order, name keys)."""
    keys, orders, lone = [], {}, []
    for raw in lines:
        start, end = _content_span(raw)
        event = orjson.loads(raw)
        event_id = event.get("eventID") if isinstance(event.get("eventID"), str) else ""
        length, number = end - start, len(keys)
        keys.append(
            (
                lifecycle_rank(event.get("eventName")),
                _time_key(event.get("eventTime")),
                event_id,
                zlib.crc32(raw[start:end]),
                length,
                number,
            )
        )
        order = _order_key(event) if length <= limits.max_event_bytes else None
        if order is not None:
            orders.setdefault(order, []).append(number)
        elif length <= limits.max_event_bytes:
            lone.append(number)
    named = [("o" + order, sorted(members, key=keys.__getitem__)) for order, members in orders.items()]
    named += [(f"e{keys[e][2]}:{keys[e][3]:08x}:{keys[e][4]}", [e]) for e in lone]
    named.sort(key=lambda pair: (pair[0], keys[pair[1][0]]))
    return [members for _, members in named]


_IDS = st.one_of(st.text("ab:0é\u00e9\u4e2d", max_size=4), st.integers(0, 9), st.none())


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(_IDS, st.sampled_from(["A", "A:", "é", 5, "5", "", None]), st.sampled_from(NAMES)),
        max_size=30,
    ),
    st.integers(0, 3),
)
def test_array_index_groups_like_the_plain_reference(
    events: list[tuple[object, object, str]], duplicates: int
) -> None:
    """The typed-array index (eventIDs in one buffer, orders as linked arrays) gives the groups, members
    and order of a plain dict-of-lists implementation, for eventIDs with ':' or non-ASCII characters,
    missing or non-string ones, repeated lines and oversized events."""
    lines = [
        orjson.dumps(
            {
                "eventName": name,
                "eventID": event_id,
                "eventTime": f"2026-03-01T10:{(7 * number) % 3:02d}:00Z",
                "properties": {"orderID": order, "note": "x" * (number % 4) * 50},
            }
        )
        + b"\n"
        for number, (event_id, order, name) in enumerate(events)
    ]
    lines += lines[:duplicates]
    limits = BatchLimits(10, 300)
    index = _index_events(io.BytesIO(b"".join(lines)), None, limits)
    assert [index.event_ids[e] for e in range(index.events)] == [
        e if isinstance(e, str) else "" for e, _, _ in events + events[:duplicates]
    ]
    groups = _group_events(index)
    assert [list(groups.members(g)) for g in range(len(groups))] == _reference_groups(lines, limits)
    assert list(groups.costs) == [
        sum(index.lengths[e] + 1 for e in groups.members(g)) for g in range(len(groups))
    ]


def test_texts_keep_any_string() -> None:
    texts = _Texts()
    values = ["", "6f1c2a3e-0000-4000-8000-00000000be9c", "é中", "\ud800", "a:b", ""]
    for value in values:
        texts.append(value)
    assert [texts[i] for i in range(len(texts))] == values


# --------------------------------------------------------------------------------------------------
# examples


def test_body_is_the_exact_envelope_around_the_lines() -> None:
    lines = [event_line(1), event_line(2, "paid for order")]
    run = run_plan(lines, BatchLimits(100, 1_000_000))
    (body,) = [b for _, _, b in run.bodies()]
    assert body == b'{"method":"POST","endpoint":"events","items":[' + lines[0] + b"," + lines[1] + b"]}"
    assert body == encode_body(lines)
    assert len(body) == ENVELOPE_BYTES - 1 + sum(len(line) + 1 for line in lines)
    assert run.plan.bodies == run.plan.lower_bound == 1


def test_whitespace_crlf_and_blank_lines_are_not_events() -> None:
    lines = [event_line(1), event_line(2, "paid for order")]
    data = b"\n  " + lines[0] + b"  \r\n\r\n\t" + lines[1]  # no final newline either
    run = run_plan(data, BatchLimits(100, 1_000_000))
    assert run.plan.events == 2
    assert [b for _, _, b in run.bodies()] == [encode_body(lines)]


def test_lifecycle_order_uses_rank_then_instant() -> None:
    lines = [
        event_line(1, "order refunded", when="2026-03-01T09:00:00Z"),
        event_line(2, "order fulfilled", when="2026-03-01T12:00:00Z"),
        event_line(3, "order refunded", when="2026-03-01T10:30:00+02:00"),  # 08:30Z: the earlier refund
        event_line(4, "paid for order", when="2026-03-01T10:00:00Z"),
        event_line(5, "placed order", when="2026-03-01T10:00:00Z"),
        event_line(6, "order canceled", when="2026-03-01T08:45:00Z"),
    ]
    run = run_plan(lines, BatchLimits(100, 1_000_000))
    items = orjson.loads(run.bodies()[0][2])["items"]
    # placed, paid, fulfilled, then canceled (rank 3) before either refund (rank 4), refunds by instant
    assert [i["eventID"] for i in items] == [orjson.loads(lines[n])["eventID"] for n in (4, 3, 1, 5, 2, 0)]


def test_an_event_time_without_offset_or_unreadable_sorts_after_every_time() -> None:
    lines = [
        event_line(1, "order refunded", when="2026-03-01T08:00:00"),  # no offset: refused, not taken as UTC
        event_line(2, "order refunded", when="not a time"),
        event_line(3, "order refunded", when="2026-03-01T11:00:00+02:00"),
        event_line(4, "order refunded", when="2026-03-01T10:00:00Z"),
    ]
    run = run_plan(lines, BatchLimits(100, 1_000_000))
    items = orjson.loads(run.bodies()[0][2])["items"]
    assert [i["eventID"] for i in items] == [orjson.loads(lines[n])["eventID"] for n in (2, 3, 0, 1)]


def test_order_ids_5_and_string_5_are_one_order() -> None:
    lines = [event_line(1, "paid for order", order=5), event_line(2, "placed order", order="5")]
    lines += [event_line(10 + n, order=f"other-{n}", pad=300) for n in range(6)]
    run = run_plan(lines, BatchLimits(3, 1_000_000))
    check_run(lines, BatchLimits(3, 1_000_000), run)
    for _, _, body in run.bodies():
        ids = [i["properties"]["orderID"] for i in orjson.loads(body)["items"]]
        assert (5 in ids) == ("5" in ids)


def test_oversized_event_is_dead_lettered_with_the_reason_and_its_order_still_sent() -> None:
    limits = BatchLimits(100, 1000)
    big = event_line(1, "placed order", pad=1000)
    small = event_line(2, "paid for order")
    run = run_plan([big, small], limits)
    (letter,) = run.dead_letters()
    assert letter == {
        "event": orjson.loads(big),
        "reason": (
            f"event is {len(big)} bytes, over the 1000-byte body limit (the batch envelope takes "
            f"{ENVELOPE_BYTES} bytes, so one event can be at most {1000 - ENVELOPE_BYTES} bytes)"
        ),
        "stage": "plan",
    }
    assert run.dead.startswith(b'{"event":' + big + b',"reason":')  # the event's bytes, verbatim
    assert [b for _, _, b in run.bodies()] == [encode_body([small])]
    assert (run.plan.dead_lettered, run.plan.items) == (1, 1)


def test_event_exactly_at_the_limit_fits() -> None:
    line = event_line(1)
    limits = BatchLimits(1, len(line) + ENVELOPE_BYTES)
    run = run_plan([line], limits)
    assert run.plan.dead_lettered == 0
    assert run.bodies()[0][2] == encode_body([line])
    assert len(encode_body([line])) == limits.max_payload_bytes
    assert run_plan([line], BatchLimits(1, len(line) + ENVELOPE_BYTES - 1)).plan.dead_lettered == 1


def test_an_order_too_big_for_one_body_is_split_in_lifecycle_order_within_one_shard() -> None:
    limits = BatchLimits(3, 1_000_000)
    order = [event_line(n, NAMES[min(n, 4)], order="big", when=f"2026-03-01T10:0{n}:00Z") for n in range(8)]
    others = [event_line(100 + n, order=f"o{n}") for n in range(40)]
    run = run_plan(others + order, limits, max_shards=8, min_bodies_per_shard=1)
    check_run(others + order, limits, run)
    assert run.plan.split_orders == 1
    chain = [b for _, b in run.plan.iter_bodies() if b.follows]
    assert len(chain) == 2  # 8 events, 3 per body: 3 + 3 + 2 (the last piece shares its body)
    assert len(run.plan.shards) == 8


@pytest.mark.parametrize(
    ("limits", "pad"),
    [(BatchLimits(2, 1_000_000), 0), (BatchLimits(100, 2000), 600)],
    ids=["split by items", "split by bytes"],
)
def test_a_split_order_keeps_lifecycle_order_across_its_bodies(limits: BatchLimits, pad: int) -> None:
    """The refund at 10:20 is earlier than the cancellation at 10:30, yet the cancellation (rank 3)
    comes first: a refund ranks after a cancellation (events.names), eventTime only orders equal ranks."""
    steps = [
        ("placed order", "10:00"),
        ("paid for order", "10:05"),
        ("order fulfilled", "10:10"),
        ("order refunded", "10:20"),
        ("order canceled", "10:30"),
        ("order refunded", "10:40"),
    ]
    order = [
        event_line(n, name, order="big", when=f"2026-03-01T{clock}:00Z", pad=pad)
        for n, (name, clock) in enumerate(steps)
    ]
    others = [event_line(100 + n, order=f"o{n}", pad=pad) for n in range(5)]
    lines = others + order[::-1]  # input order is not lifecycle order
    run = run_plan(lines, limits, max_shards=4, min_bodies_per_shard=1)
    check_run(lines, limits, run)
    assert run.plan.split_orders == 1
    seen = [
        (seq, item["eventID"])
        for seq, (_, _, body) in enumerate(run.bodies())
        for item in orjson.loads(body)["items"]
        if item["properties"].get("orderID") == "big"
    ]
    expected = [orjson.loads(order[n])["eventID"] for n in (0, 1, 2, 4, 3, 5)]
    assert [event_id for _, event_id in seen] == expected
    seqs = sorted({seq for seq, _ in seen})
    assert len(seqs) == 3
    assert seqs == list(range(seqs[0], seqs[0] + 3))  # consecutive bodies, each following the one before
    plans = [body for _, body in run.plan.iter_bodies()]
    assert [plans[s].follows for s in seqs] == [None, plans[seqs[0]].body_id, plans[seqs[1]].body_id]


def test_shard_cuts_never_fall_inside_a_split_order() -> None:
    limits = BatchLimits(2, 1_000_000)
    lines = [
        event_line(n, "order refunded", order=f"order-{n // 9}", when=f"2026-03-01T10:{n % 9:02d}:00Z")
        for n in range(9 * 6)
    ]
    run = run_plan(lines, limits, max_shards=7, min_bodies_per_shard=1)
    check_run(lines, limits, run)
    for shard in run.plan.shards:
        assert shard.bodies[0].follows is None


def test_shard_count_grows_with_bodies_up_to_max_shards() -> None:
    lines = [event_line(n, order=f"o{n}") for n in range(2000)]
    assert len(run_plan(lines[:1], BatchLimits(1, 100_000)).plan.shards) == 1
    assert len(run_plan(lines[:100], BatchLimits(1, 100_000)).plan.shards) == 7  # ceil(100 / 16)
    plan = run_plan(lines, BatchLimits(1, 100_000)).plan
    assert len(plan.shards) == 64
    assert {len(s.bodies) for s in plan.shards} == {31, 32}  # even: 2000 / 64
    assert len(run_plan(lines, BatchLimits(1, 100_000), max_shards=1023).plan.shards) == 125  # 2000 / 16
    many = run_plan(lines, BatchLimits(1, 100_000), max_shards=1023, min_bodies_per_shard=1).plan
    assert len(many.shards) == 1023


def test_empty_input_plans_nothing_and_opens_no_shard() -> None:
    run = run_plan(b"\n\n", BatchLimits(100, 1_000_000))
    assert (run.plan.shards, run.opened) == ((), [])
    assert (run.plan.events, run.plan.bodies, run.plan.lower_bound, run.plan.packing_ratio) == (0, 0, 0, 1.0)


def test_unseekable_stream_gives_the_same_plan() -> None:
    lines = [event_line(n, NAMES[n % 5], order=f"o{n % 7}", pad=n * 13) for n in range(60)]
    data = b"".join(line + b"\n" for line in lines)

    class Pipe(io.RawIOBase):
        def __init__(self) -> None:
            self.inner = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            chunk = self.inner.read(min(len(buffer), 7))
            buffer[: len(chunk)] = chunk
            return len(chunk)

    limits = BatchLimits(5, 2000)
    dead = io.BytesIO()
    shards: dict[int, bytes] = {}
    piped = plan_batches(
        io.BufferedReader(Pipe()), limits, open_shard=lambda i: KeptBytes(shards, i), dead_letters=dead
    )
    assert not io.BufferedReader(Pipe()).seekable()
    direct = run_plan(data, limits)
    assert (piped, shards, dead.getvalue()) == (direct.plan, direct.shards, direct.dead)


def test_real_files_use_positional_reads_from_the_current_position(tmp_path: Any) -> None:
    lines = [event_line(n, NAMES[n % 5], order=f"o{n % 5}") for n in range(30)]
    path = tmp_path / "valid.ndjson"
    path.write_bytes(b"HEADER TO SKIP\n" + b"".join(line + b"\n" for line in lines))
    with open(path, "rb") as src:
        src.readline()
        plan = plan_batches(
            src,
            BatchLimits(4, 5000),
            open_shard=lambda i: open(tmp_path / f"shard-{i}.ndjson", "wb"),  # noqa: SIM115
            dead_letters=io.BytesIO(),
        )
    expected = run_plan(lines, BatchLimits(4, 5000))
    assert plan == expected.plan
    assert {i: (tmp_path / f"shard-{i}.ndjson").read_bytes() for i in expected.shards} == expected.shards


def test_dry_run_writes_no_bodies_but_plans_the_same() -> None:
    lines = [event_line(n, order=f"o{n % 9}") for n in range(50)]
    plan = plan_batches(
        io.BytesIO(b"\n".join(lines)), BatchLimits(7, 3000), open_shard=None, dead_letters=io.BytesIO()
    )
    assert plan == run_plan(lines, BatchLimits(7, 3000)).plan


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"eventName": "placed order"}\nnot json\n', "line 2 of the valid-events file is not JSON"),
        (b"[1, 2]\n", "line 1 of the valid-events file is a JSON list, not an event object"),
    ],
)
def test_broken_input_names_the_line_and_the_fix(data: bytes, message: str) -> None:
    with pytest.raises(OmnisendInputError, match=message) as info:
        run_plan(data, BatchLimits(100, 1_000_000))
    assert "re-run the validate step" in str(info.value)


def test_text_mode_input_is_refused() -> None:
    with pytest.raises(OmnisendInputError, match="binary mode"):
        plan_batches(
            io.StringIO("{}\n"),  # type: ignore[arg-type]
            BatchLimits(100, 1_000_000),
            open_shard=None,
            dead_letters=io.BytesIO(),
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_shards": 1024}, "below Airflow's max_map_length \\(1024\\), got 1024; use at most 1023"),
        ({"max_shards": 0}, "max_shards must be >= 1"),
        ({"min_bodies_per_shard": 0}, "min_bodies_per_shard must be from 1 to 100000"),
    ],
)
def test_shard_settings_are_validated(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(OmnisendConfigError, match=message):
        run_plan([event_line(1)], BatchLimits(100, 1_000_000), **kwargs)


# --------------------------------------------------------------------------------------------------
# packing quality on a realistic file, memory


@pytest.mark.parametrize(
    "profile", ["1000 items / 1 MB", "100 items / 1 MB", "100 items / 128 KB", "1000 items / 64 KB"]
)
def test_packing_ratio_end_to_end_on_a_realistic_file(profile: str) -> None:
    limits = PROFILES[profile]
    lines = write_realistic_events(8000, seed=3)
    run = run_plan(lines, limits)
    check_run(lines, limits, run)
    assert run.plan.bodies <= allowed(run.plan.lower_bound)
    assert run.plan.packing_ratio <= 1.02 or run.plan.bodies == run.plan.lower_bound + 1


def test_large_partition_is_not_held_in_memory(tmp_path: Any) -> None:
    """Smoke: 12,000 events (~18 MB) plan with peak Python allocations far below the file size.

    Speed and RSS at 200,000 events are measured by benchmarks/bench_plan.py, not asserted here."""
    lines = write_realistic_events(12_000, seed=11)
    path = tmp_path / "valid.ndjson"
    with open(path, "wb") as out:
        for line in lines:
            out.write(line + b"\n")
    size = path.stat().st_size
    del lines
    tracemalloc.start()
    try:
        with open(path, "rb") as src, open(tmp_path / "dead.ndjson", "wb") as dead:
            plan = plan_batches(
                src,
                BatchLimits(1000, 262_144),
                open_shard=lambda i: open(tmp_path / f"shard-{i:05d}.ndjson", "wb"),  # noqa: SIM115
                dead_letters=dead,
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 15_000_000
    assert peak < size / 3, f"peak {peak / 1e6:.1f} MB of allocations for a {size / 1e6:.1f} MB file"
    assert peak < 200 * 12_000 + 4 * 262_144  # the typed-array index, plus a body being built
    assert plan.items == 12_000
    assert plan.bodies <= allowed(plan.lower_bound)
    written = sum((tmp_path / f"shard-{i:05d}.ndjson").stat().st_size for i in range(len(plan.shards)))
    assert written == plan.total_bytes + plan.bodies
