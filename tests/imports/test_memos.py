"""The import memoises what a file repeats (customers.import_tags: each distinct tags cell and
item once; customers.import_state: each distinct combination of held tags once). A memo is a
cache, never state: every row still gets its own errors with its own line, and a memo that
fills up and starts again changes nothing."""

from __future__ import annotations

import pytest

from customers import import_state, import_tags
from customers.importing import import_file
from tagging.models import TagAssignment
from tests.factories import CustomerFactory
from tests.imports.conftest import codes

pytestmark = pytest.mark.django_db
HEADER = "external_userid,phone,name,tags\n"


def test_a_repeated_bad_cell_is_reported_on_every_row(importer, intent_group):
    text = HEADER + "wm1,,甲,意向:高;意向:没有\nwm2,,乙,意向:高;意向:没有\nwm3,,丙,意向:高\n"
    report = import_file(text.encode(), user=importer, skip_invalid=True)
    assert codes(report) == [(2, "unknown_tag"), (3, "unknown_tag")]
    assert [e.column for e in report.errors] == ["tags", "tags"]
    assert TagAssignment.objects.filter(customer__external_userid="wm3").count() == 1


def test_a_tag_named_by_two_cells_of_a_row_counts_once(importer, intent_group):
    text = "external_userid,tags,意向\nwm1,意向:高,高\nwm2,意向:高,高\n"
    report = import_file(text.encode(), user=importer)
    assert not report.errors and report.assignments_added == 2


@pytest.mark.parametrize("limit", [1, 2])
def test_memos_that_fill_up_change_nothing(
    importer, intent_group, source_group, monkeypatch, limit
):
    monkeypatch.setattr(import_tags, "MEMO_LIMIT", limit)
    monkeypatch.setattr(import_state._HeldTags, "LIMIT", limit)
    for i, tag in enumerate(["意向:高", "客户来源:官网", "意向:高;客户来源:官网"]):
        customer = CustomerFactory(external_userid=f"wm{i}", phone=None, name=f"客户{i}")
        for item in tag.split(";"):
            group, name = item.split(":")
            TagAssignment.objects.create(customer=customer, tag=_tag(group, name), source="manual")
    cells = ["意向:低", "客户来源:官网;意向:高", "意向:低;客户来源:展会", "意向:没有"]
    text = HEADER + "".join(f"wm{i % 3},,客户{i % 3},{cells[i % 4]}\n" for i in range(8))
    report = import_file(text.encode(), user=importer, dry_run=True)
    assert codes(report) == [
        (2, "exclusive_conflict"),
        (4, "exclusive_conflict"),
        (5, "unknown_tag"),
        (6, "exclusive_conflict"),
        (8, "exclusive_conflict"),
        (9, "unknown_tag"),
    ]


def _tag(group: str, name: str):
    from tagging.models import Tag

    return Tag.objects.get(group__name=group, name=name)


def test_read_csv_cleans_every_field_exactly_like_clean_field():
    """read_csv keeps a field whose edges need no cleaning without calling clean_field; the
    result must be clean_field's for every field, whatever its edges."""
    import csv
    import io
    import random

    from customers.import_readers import clean_field, read_csv

    alphabet = ["a", "1", " ", "\u3000", "\u200b", "'", "=", "\t", "\xa0", "中", "+", "\ufeff"]
    rng = random.Random(12)
    rows = [
        ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4))) for _ in range(4)]
        for _ in range(3000)
    ]
    out = io.StringIO()
    csv.writer(out).writerows([["h1", "h2", "h3", "h4"], *rows])
    got = [r.values for r in read_csv(out.getvalue().encode("utf-8"))][1:]
    want = [[clean_field(v) for v in row] for row in rows if any(clean_field(v) for v in row)]
    assert got == want
