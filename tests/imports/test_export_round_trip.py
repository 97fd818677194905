"""Exports a reader can import back (issue 13 §1, §12): only tags the reader may edit, personal
groups by their qualified name, phones in the form people write; every demo persona's export
re-imports without an error and changes nothing."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth import get_user_model

from customers.exporting import export_customers
from customers.models import Customer
from customers.phones import export_phone
from tagging.models import AssignmentSource, Tag, TagAssignment, TagGroup, TagKind
from tagging.services import assign_tags
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory, UserFactory
from tests.imports.conftest import run
from tests.seeded import seeded_demo

pytestmark = pytest.mark.django_db


def export_rows(user, fmt="csv", **kwargs) -> list[list[str]]:
    data = b"".join(export_customers(user, fmt, **kwargs))
    if fmt == "csv":
        return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(data)).active
    return [[c.value or "" for c in row] for row in sheet.iter_rows()]


@pytest.mark.parametrize(
    ("stored", "written"),
    [
        ("+8613800138000", "13800138000"),
        ("+8619912345678", "19912345678"),
        ("+447911123456", "+447911123456"),
        ("+85291234567", "+85291234567"),  # Hong Kong: another country code
        ("+861380013800", "+861380013800"),  # not 11 national digits: left in E.164
        ("", ""),
        (None, ""),
    ],
)
def test_export_phone_form(stored, written):
    assert export_phone(stored) == written


def test_phones_in_csv_and_xlsx(importer, tmp_path):
    CustomerFactory(external_userid="wmcn", phone="+8613800138000", name="国内")
    CustomerFactory(external_userid="wmuk", phone="+447911123456", name="英国")
    csv_rows = {r[0]: r for r in export_rows(importer)[1:]}
    assert csv_rows["wmcn"][1] == "13800138000"  # no quote: a digit cannot start a formula
    assert csv_rows["wmuk"][1] == "'+447911123456"  # "+" could: quoted
    from openpyxl import load_workbook

    data = b"".join(export_customers(importer, "xlsx"))
    sheet = load_workbook(io.BytesIO(data)).active
    cells = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    for ext, phone in (("wmcn", "13800138000"), ("wmuk", "+447911123456")):
        cell = cells[ext][1]
        assert cell.value == phone and cell.data_type == "s" and cell.number_format == "@"
    # both files read back to the same numbers
    for fmt, name in (("csv", "c.csv"), ("xlsx", "c.xlsx")):
        body = b"".join(export_customers(importer, fmt))
        report = run(body, importer, filename=name)
        assert not report.errors and report.customers_updated == 0, report.errors
    assert set(Customer.objects.values_list("phone", flat=True)) == {
        "+8613800138000",
        "+447911123456",
    }


def test_xlsx_keeps_neutralising_other_cells_as_text(importer):
    CustomerFactory(external_userid="wmf", phone=None, name="=HYPERLINK(1)")
    data = b"".join(export_customers(importer, "xlsx"))
    from openpyxl import load_workbook

    cell = load_workbook(io.BytesIO(data)).active["C2"]
    assert cell.value == "'=HYPERLINK(1)" and cell.data_type == "s"
    report = run(data, importer, filename="x.xlsx")
    assert not report.errors and report.customers_updated == 0
    assert Customer.objects.get().name == "=HYPERLINK(1)"


@pytest.fixture
def two_personal_groups(db, superuser):
    """Two employees, each with a personal group named 我的客户标记, and one shared group of the
    same name: three groups, three different labels."""
    wang = UserFactory(username="wang", display_name="王销售")
    chen = UserFactory(username="chen", display_name="陈销售")
    customer = CustomerFactory(external_userid="wm1", phone=None, name="客户一")
    groups = {}
    for owner in (wang, chen):
        group = TagGroupFactory(name="我的客户标记", kind=TagKind.PERSONAL, owner=owner)
        groups[owner.username] = group
        tag = TagFactory(group=group, name="重点")
        assign_tags([customer], [tag], actor=owner, source=AssignmentSource.MANUAL)
    shared = TagGroupFactory(name="我的客户标记")
    assign_tags(
        [customer],
        [TagFactory(group=shared, name="重点")],
        actor=superuser,
        source=AssignmentSource.MANUAL,
    )
    return wang, chen, customer, groups


def test_personal_groups_are_qualified_and_others_left_out(two_personal_groups, superuser):
    wang, chen, customer, groups = two_personal_groups
    from tests.factories import FollowerFactory

    FollowerFactory(customer=customer, employee=wang)
    assert export_rows(superuser)[1][3] == "我的客户标记:重点"  # the shared group only
    assert export_rows(wang)[1][3] == "我的客户标记（王销售）:重点"
    report = run(b"".join(export_customers(wang)), wang)
    assert not report.errors and report.assignments_added == 0


def test_importer_reads_qualified_names_and_bare_names_of_its_own_group(
    two_personal_groups, superuser
):
    wang, chen, customer, groups = two_personal_groups
    TagFactory(group=groups["wang"], name="待回访")
    from tests.factories import FollowerFactory

    FollowerFactory(customer=customer, employee=wang)
    report = run("external_userid,tags\nwm1,我的客户标记（王销售）:待回访\n", wang)
    assert not report.errors and report.assignments_added == 1
    # a bare name: the importer's own personal group (the shared one is not granted to wang)
    report = run("external_userid,tags\nwm1,我的客户标记:待回访\n", wang)
    assert not report.errors and report.assignments_added == 0  # held since the line above
    # a visible shared group of that name wins over the personal one
    report = run("external_userid,tags\nwm1,我的客户标记:待回访\n", superuser)
    assert [e.code for e in report.errors] == ["unknown_tag"]
    # someone else's personal tags are only their owner's to use: unknown to anyone else
    TagFactory(group=groups["chen"], name="新")
    report = run("external_userid,tags\nwm1,我的客户标记（陈销售）:新\n", superuser)
    assert [e.code for e in report.errors] == ["unknown_tag"]


def test_wide_layout_headers_use_labels(two_personal_groups):
    from customers.resources import CustomerResource

    wang, chen, customer, groups = two_personal_groups
    headers = CustomerResource(user=wang, layout="wide").get_export_headers()
    assert "我的客户标记（王销售）" in headers and "我的客户标记（陈销售）" not in headers


def test_a_view_only_customer_reads_back_unchanged_but_is_not_changed(
    importer, departments, finance_operator, intent_group
):
    from permissions import services as permission_services

    assert not run("external_userid,name,tags\nwm1,客户一,意向:高\n", importer).errors
    Customer.objects.update(department=departments["销售部"])
    permission_services.share_customers(
        departments["销售部"], with_department=departments["财务部"], actor=importer
    )
    exported = b"".join(export_customers(finance_operator))
    assert export_rows(finance_operator)[1][:3] == ["wm1", "", "客户一"]
    report = run(exported, finance_operator)
    assert not report.errors and report.valid == 1 and report.customers_updated == 0
    # a row that would change the customer is still refused
    report = run("external_userid,name\nwm1,改名\n", finance_operator)
    assert [e.code for e in report.errors] == ["permission_denied"]


def test_view_only_groups_stay_out_of_a_full_export(sales_importer, importer, departments):
    run("external_userid,tags\nwm1,意向:高;客户来源:官网\n", importer)
    Customer.objects.update(department=departments["销售部"])
    rows = export_rows(sales_importer)
    assert rows[1][3] == "意向:高"  # 客户来源 is VIEW for 销售部: not importable, not exported


# --- every demo persona ----------------------------------------------------------------------

_seeded = seeded_demo(40, "--events-per-customer", "3")

PERSONAS = [
    "admin",
    "tagadmin",
    "sales_wang",
    "sales_chen",
    "service_zhao",
    "market_li",
    "finance_sun",
    "ops_zhou",
]


def snapshot():
    return (
        sorted(Customer.objects.values_list("pk", "external_userid", "phone", "name")),
        sorted(TagAssignment.objects.values_list("customer_id", "tag_id", "source", "actor_id")),
        Tag.objects.count(),
        TagGroup.objects.count(),
    )


@pytest.mark.parametrize("username", PERSONAS)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_demo_persona_export_reimports_without_change(_seeded, db, username, fmt):
    user = get_user_model().objects.get(username=username)
    data = b"".join(export_customers(user, fmt))
    before = snapshot()
    strict = run(data, user, filename=f"export.{fmt}")
    assert not strict.errors, strict.errors[:5]
    assert strict.applied and strict.rows == len(export_rows(user, fmt)) - 1
    assert (strict.customers_created, strict.customers_updated, strict.assignments_added) == (
        0,
        0,
        0,
    )
    assert snapshot() == before
