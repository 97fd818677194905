"""The segment index on PostgreSQL: one bitmap of customer ids per tag
(docs/segments.md#counting-and-listing, docs/scaling.md).

Layout: ``tagging_tagbitmap(key, chunk, bits)`` holds, per tag id (``key``; 0 means "every
customer", ``-d`` "the customers of department d": :func:`department_key`, below
``FOLLOWER_BASE`` "the customers employee e follows": :func:`follower_key`), 8 KiB chunks whose
bit ``i`` is customer id ``chunk * CHUNK_BITS + i``. The department and follower bitmaps are an
index of the customer scope (``permissions.policy.customer_scope``): segments OR the bitmaps of
a user's scope departments with the one of the customers they follow, and intersect before
touching a row.
``tagging_tagbitmapdelta`` holds the changes not yet folded in; database triggers on
``tagging_tagassignment``, ``customers_customer`` and ``customers_follower`` (migrations 0004 and
0013) append to it in the
writer's own statement and transaction, so every writer — services, set-based import and rule
runs, COPY, raw SQL — is covered and writers take no extra locks.

Why this is exact under concurrent writes: readers fetch bitmaps and deltas in ONE statement
(one snapshot) and apply the deltas in id order. Two changes to the same (customer, tag) are
serialised by the assignment row / unique index, so the later one always gets the larger delta
id; changes to different pairs commute. :func:`compact_index` folds deltas into the bitmaps in
one transaction (serialised by an advisory lock), which readers see all-or-nothing.

Bulk loaders: the triggers keep up with COPY (one delta per row); loading millions of rows is
faster followed by :func:`rebuild_index`, which rebuilds from the tables and empties the log.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Iterable

from django.db import connections, transaction

CHUNK_BITS = 1 << 16
CHUNK_BYTES = CHUNK_BITS // 8
# Roaring-style containers: a chunk with fewer than ARRAY_MAX customers is stored as their
# sorted 16-bit offsets (2 bytes each, so rare tags cost little to read); fuller chunks as an
# 8 KiB bitmap. The stored length tells them apart (an array is always shorter than 8 KiB).
ARRAY_MAX = 4096
ALL_CUSTOMERS = 0  # the key of the "every customer" bitmap
_COMPACT_LOCK = 0x7A6D_0001  # pg advisory lock id for compaction / rebuild
# A reader that had to replay more pending changes than this folds the log itself (when no
# worker runs the every-minute compaction, e.g. the demo without Redis).
COMPACT_AFTER = 50_000


# Keys are int4: departments take -1 .. -(2**30 - 1), followers -2**30 - employee id.
FOLLOWER_BASE = -(1 << 30)


def department_key(department_id: int) -> int:
    """The key of the bitmap of a department's own customers (not its sub-departments')."""
    return -department_id


def follower_key(employee_id: int) -> int:
    """The key of the bitmap of the customers an employee follows."""
    return FOLLOWER_BASE - employee_id


def available(using: str = "default") -> bool:
    """The index exists only on PostgreSQL; elsewhere segments use SQL EXISTS (same results)."""
    return connections[using].vendor == "postgresql"


# --- reading ---------------------------------------------------------------------------------


def load(keys: Iterable[int], using: str = "default") -> dict[int, int]:
    """Current bitmaps for ``keys`` as Python ints (bit n set = customer n), in one snapshot."""
    keys = sorted(set(keys))
    result = dict.fromkeys(keys, 0)
    if not keys:
        return result
    with connections[using].cursor() as cursor:
        cursor.execute(
            "SELECT key, chunk, bits, NULL::bigint, NULL::boolean, 0::bigint AS seq"
            " FROM tagging_tagbitmap WHERE key = ANY(%s)"
            " UNION ALL"
            " SELECT key, NULL, NULL, customer_id, present, id"
            " FROM tagging_tagbitmapdelta WHERE key = ANY(%s)"
            " ORDER BY seq",
            [keys, keys],
        )
        rows = cursor.fetchall()
    chunks: dict[int, dict[int, bytes]] = defaultdict(dict)
    last: dict[int, dict[int, bool]] = defaultdict(dict)
    for key, chunk, bits, customer_id, present, _seq in rows:
        if bits is not None:
            chunks[key][chunk] = bytes(bits)
        else:
            last[key][customer_id] = present  # rows come in id order: the last one wins
    for key in keys:
        value = _from_chunks(chunks.get(key, {}))
        if last.get(key):
            value = _apply(value, last[key])
        result[key] = value
    replayed = len(rows) - sum(len(c) for c in chunks.values())
    if replayed > COMPACT_AFTER and not connections[using].in_atomic_block:
        compact_index(using=using, wait=False)
    return result


def sizes(using: str = "default") -> dict[int, int]:
    """Customers per key (tag id; 0 = all customers; not departments), exact, in one statement: keys without
    pending changes are counted in the database (``bit_count``), the others replayed here."""
    with connections[using].cursor() as cursor:
        cursor.execute(
            "WITH pending AS (SELECT DISTINCT key FROM tagging_tagbitmapdelta WHERE key >= 0)"
            " SELECT key, NULL::int,"
            "  sum(CASE WHEN length(bits) = 8192 THEN bit_count(bits) ELSE length(bits) / 2 END)::bigint,"
            "  NULL::bytea, NULL::bigint,"
            "  NULL::boolean, 0::bigint AS seq"
            " FROM tagging_tagbitmap WHERE key >= 0 AND key NOT IN (SELECT key FROM pending)"
            " GROUP BY key"
            " UNION ALL"
            " SELECT key, chunk, NULL, bits, NULL, NULL, 0 FROM tagging_tagbitmap"
            " WHERE key IN (SELECT key FROM pending)"
            " UNION ALL"
            " SELECT key, NULL, NULL, NULL, customer_id, present, id FROM tagging_tagbitmapdelta"
            " WHERE key >= 0 ORDER BY seq"
        )
        rows = cursor.fetchall()
    result: dict[int, int] = {}
    chunks: dict[int, dict[int, bytes]] = defaultdict(dict)
    last: dict[int, dict[int, bool]] = defaultdict(dict)
    for key, chunk, count, bits, customer_id, present, _seq in rows:
        if count is not None:
            result[key] = int(count)
        elif bits is not None:
            chunks[key][chunk] = bytes(bits)
        else:
            last[key][customer_id] = present
    for key, changes in last.items():
        result[key] = _apply(_from_chunks(chunks.get(key, {})), changes).bit_count()
    return result


def _from_chunks(chunks: dict[int, bytes]) -> int:
    if not chunks:
        return 0
    data = bytearray((max(chunks) + 1) * CHUNK_BYTES)
    for chunk, blob in chunks.items():
        base = chunk * CHUNK_BYTES
        if len(blob) == CHUNK_BYTES:
            data[base : base + CHUNK_BYTES] = blob
        else:
            for offset in _offsets(blob):
                data[base + (offset >> 3)] |= 1 << (offset & 7)
    return int.from_bytes(data, "little")


def _offsets(blob: bytes) -> memoryview:
    return memoryview(blob).cast("H")  # little-endian uint16 on every platform we run on


def _decode(blob: bytes | None) -> bytearray:
    """A stored chunk (bitmap or array container) as an 8 KiB bitmap."""
    if blob is None:
        return bytearray(CHUNK_BYTES)
    if len(blob) == CHUNK_BYTES:
        return bytearray(blob)
    bits = bytearray(CHUNK_BYTES)
    for offset in _offsets(blob):
        bits[offset >> 3] |= 1 << (offset & 7)
    return bits


def _encode(bits: bytearray | bytes) -> bytes:
    """An 8 KiB bitmap in its stored form: an array container when it is sparse."""
    value = int.from_bytes(bits, "little")
    if value.bit_count() >= ARRAY_MAX:
        return bytes(bits)
    offsets = array(
        "H", (i * 8 + b for i, byte in enumerate(bits) if byte for b in range(8) if byte >> b & 1)
    )
    return offsets.tobytes()


def _apply(value: int, changes: dict[int, bool]) -> int:
    size = max(max(changes) // 8 + 1, (value.bit_length() + 7) // 8)
    add, clear = bytearray(size), bytearray(size)
    for customer_id, present in changes.items():
        target = add if present else clear
        target[customer_id >> 3] |= 1 << (customer_id & 7)
    return (value & ~int.from_bytes(clear, "little")) | int.from_bytes(add, "little")


def to_bytes(value: int) -> bytes:
    """Little-endian bytes of a bitmap (``get_bit(bytes, n)`` in PostgreSQL tests customer n)."""
    return value.to_bytes(max(1, (value.bit_length() + 7) // 8), "little")


_WALK_BYTES = 512  # blocks of 4096 ids: all-zero ones are skipped by a byte compare


def ids_descending(value: int, offset: int = 0, limit: int | None = None) -> list[int]:
    """Customer ids in the bitmap, largest first, skipping ``offset``; at most ``limit``.

    Walks 512-byte blocks from the top, skipping empty ones by comparison and whole blocks by
    popcount, so a first page is cheap for sparse and dense bitmaps alike."""
    data = to_bytes(value)
    zero = bytes(_WALK_BYTES)
    out: list[int] = []
    skip = offset
    for end in range(len(data), 0, -_WALK_BYTES):
        start = max(0, end - _WALK_BYTES)
        chunk = data[start:end]
        if chunk == zero[: end - start]:
            continue
        block = int.from_bytes(chunk, "little")
        ones = block.bit_count()
        if skip >= ones:
            skip -= ones
            continue
        base = start * 8
        while block:
            top = block.bit_length() - 1
            block ^= 1 << top
            if skip:
                skip -= 1
                continue
            out.append(base + top)
            if limit is not None and len(out) >= limit:
                return out
    return out


# --- maintenance -------------------------------------------------------------------------------


def compact_index(limit: int = 500_000, using: str = "default", wait: bool = True) -> int:
    """Fold up to ``limit`` oldest deltas into the bitmaps; return how many were folded.

    One transaction: readers see the deltas either still in the log or already in the bitmaps.
    Deltas committed later with smaller ids concern other (customer, tag) pairs (see module
    docstring), so folding a prefix of the visible log is safe.
    """
    if not available(using):
        return 0
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        if wait:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_COMPACT_LOCK])
        else:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [_COMPACT_LOCK])
            if not cursor.fetchone()[0]:
                return 0  # another session is compacting
        cursor.execute(
            "SELECT id, key, customer_id, present FROM tagging_tagbitmapdelta ORDER BY id LIMIT %s",
            [limit],
        )
        rows = cursor.fetchall()
        if not rows:
            return 0
        changes: dict[tuple[int, int], dict[int, bool]] = defaultdict(dict)
        for _id, key, customer_id, present in rows:
            changes[(key, customer_id // CHUNK_BITS)][customer_id % CHUNK_BITS] = present
        keys = sorted({key for key, _chunk in changes})
        cursor.execute("SELECT key, chunk, bits FROM tagging_tagbitmap WHERE key = ANY(%s)", [keys])
        current = {(key, chunk): bytes(bits) for key, chunk, bits in cursor.fetchall()}
        upserts, empty = [], []
        for (key, chunk), bits_changes in sorted(changes.items()):
            bits = _decode(current.get((key, chunk)))
            for offset, present in bits_changes.items():
                if present:
                    bits[offset >> 3] |= 1 << (offset & 7)
                else:
                    bits[offset >> 3] &= ~(1 << (offset & 7)) & 0xFF
            if any(bits):
                upserts.append((key, chunk, _encode(bits)))
            else:
                empty.append((key, chunk))
        cursor.executemany(
            "INSERT INTO tagging_tagbitmap (key, chunk, bits) VALUES (%s, %s, %s)"
            " ON CONFLICT (key, chunk) DO UPDATE SET bits = EXCLUDED.bits",
            upserts,
        )
        if empty:
            cursor.executemany("DELETE FROM tagging_tagbitmap WHERE key = %s AND chunk = %s", empty)
        cursor.execute(
            "DELETE FROM tagging_tagbitmapdelta WHERE id = ANY(%s)", [[r[0] for r in rows]]
        )
        return len(rows)


def rebuild_index(using: str = "default") -> dict[str, int]:
    """Rebuild every bitmap (tags, all customers, departments) from ``tagging_tagassignment``
    and ``customers_customer``.

    Blocks assignment and customer writes (SHARE lock) and segment reads (the log is truncated)
    until it commits. Call it after bulk-loading with COPY; returns counts for the caller's log.
    """
    if not available(using):
        return {"bitmaps": 0, "customers": 0, "assignments": 0}
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_COMPACT_LOCK])
        cursor.execute(
            "LOCK TABLE tagging_tagassignment, customers_customer, customers_follower IN SHARE MODE"
        )
        cursor.execute("TRUNCATE tagging_tagbitmapdelta, tagging_tagbitmap")
        counts = {"bitmaps": 0, "customers": 0, "assignments": 0}
        for label, sql in (
            (
                "customers",
                "SELECT 0, id >> 16, array_agg(id & 65535) FROM customers_customer GROUP BY 2",
            ),
            (
                "assignments",
                "SELECT tag_id, customer_id >> 16, array_agg(customer_id & 65535)"
                " FROM tagging_tagassignment GROUP BY 1, 2",
            ),
        ):
            chunks, bits = _build(cursor, sql, using)
            counts["bitmaps"] += chunks
            counts[label] += bits
        for sql in _SCOPE_SQL:
            counts["bitmaps"] += _build(cursor, sql, using)[0]
        return counts


# The scope bitmaps: departments' customers (key -department id), employees' followed customers.
_SCOPE_SQL = (
    "SELECT -department_id, id >> 16, array_agg(id & 65535) FROM customers_customer"
    " WHERE department_id IS NOT NULL GROUP BY 1, 2",
    f"SELECT {FOLLOWER_BASE} - employee_id, customer_id >> 16, array_agg(customer_id & 65535)"
    " FROM customers_follower GROUP BY 1, 2",
)


def _build(cursor, sql: str, using: str) -> tuple[int, int]:
    """Insert the bitmaps of ``sql``'s (key, chunk, offsets) rows; return (chunks, bits)."""
    cursor.execute(sql)
    batch, count = [], 0
    for key, chunk, offsets in cursor.fetchall():
        if len(offsets) < ARRAY_MAX:
            blob = array("H", sorted(offsets)).tobytes()
        else:
            bits = bytearray(CHUNK_BYTES)
            for offset in offsets:
                bits[offset >> 3] |= 1 << (offset & 7)
            blob = bytes(bits)
        batch.append((key, chunk, blob))
        count += len(offsets)
    with connections[using].cursor() as writer:
        writer.executemany(
            "INSERT INTO tagging_tagbitmap (key, chunk, bits) VALUES (%s, %s, %s)", batch
        )
    return len(batch), count


def build_scope_index(using: str = "default") -> int:
    """(Re)build the department and follower bitmaps, keeping the tag bitmaps (migration 0013).
    Locks like :func:`rebuild_index`; returns the number of chunks written."""
    if not available(using):
        return 0
    with transaction.atomic(using=using), connections[using].cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_COMPACT_LOCK])
        cursor.execute("LOCK TABLE customers_customer, customers_follower IN SHARE MODE")
        cursor.execute("DELETE FROM tagging_tagbitmapdelta WHERE key < 0")
        cursor.execute("DELETE FROM tagging_tagbitmap WHERE key < 0")
        return sum(_build(cursor, sql, using)[0] for sql in _SCOPE_SQL)


def verify_index(using: str = "default") -> list[tuple[int, int, str]]:
    """Differences between the index and the tables as (key, customer_id, 'missing'|'extra').

    Reads everything in one REPEATABLE READ snapshot; for tests and the ``bench`` script."""
    if not available(using):
        return []
    connection = connections[using]
    outermost = not connection.in_atomic_block
    with transaction.atomic(using=using), connection.cursor() as cursor:
        if outermost:  # else the caller's transaction decides (tests: no concurrent writers)
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute(
            "SELECT key FROM tagging_tagbitmap UNION SELECT key FROM tagging_tagbitmapdelta"
            " UNION SELECT tag_id FROM tagging_tagassignment UNION SELECT 0"
            " UNION SELECT -department_id FROM customers_customer WHERE department_id IS NOT NULL"
            " UNION SELECT %s - employee_id FROM customers_follower",
            [FOLLOWER_BASE],
        )
        keys = [row[0] for row in cursor.fetchall()]
        index = load(keys, using=using)
        cursor.execute("SELECT tag_id, customer_id FROM tagging_tagassignment")
        truth: dict[int, set[int]] = defaultdict(set)
        for tag_id, customer_id in cursor.fetchall():
            truth[tag_id].add(customer_id)
        cursor.execute("SELECT id, department_id FROM customers_customer")
        for customer_id, department_id in cursor.fetchall():
            truth[ALL_CUSTOMERS].add(customer_id)
            if department_id is not None:
                truth[department_key(department_id)].add(customer_id)
        cursor.execute("SELECT employee_id, customer_id FROM customers_follower")
        for employee_id, customer_id in cursor.fetchall():
            truth[follower_key(employee_id)].add(customer_id)
    problems = []
    for key in keys:
        have = set(ids_descending(index[key]))
        problems += [(key, c, "missing") for c in sorted(truth[key] - have)]
        problems += [(key, c, "extra") for c in sorted(have - truth[key])]
    return problems
