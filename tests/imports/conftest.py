"""Import/export fixtures on top of tests/conftest.py.

- ``importer``: the superuser (sees every group and customer)
- ``sales_importer``: ``sales_operator`` with EDIT on 意向 and VIEW on 客户来源 (销售部 grants);
  客户等级 (corporate) is not granted to 销售部 at all
- ``auto_group``: an auto group 自动 with the tag 活跃
"""

from __future__ import annotations

import io

import pytest

from customers.importing import import_file
from permissions import services as grants
from permissions.policy import Level
from tagging.models import TagKind
from tests.factories import TagFactory, TagGroupFactory


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


def run(data, user, **kwargs):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return import_file(data, user=user, filename=kwargs.pop("filename", "file.csv"), **kwargs)


def codes(report):
    return [(e.line, e.code) for e in report.errors]


@pytest.fixture
def importer(superuser):
    return superuser


@pytest.fixture
def auto_group(db):
    group = TagGroupFactory(name="自动", kind=TagKind.AUTO)
    TagFactory(group=group, name="活跃")
    return group


@pytest.fixture
def level_group(db):
    group = TagGroupFactory(name="客户等级")
    TagFactory(group=group, name="VIP")
    return group


@pytest.fixture
def sales_importer(departments, sales_operator, intent_group, source_group, level_group, superuser):
    grants.grant(intent_group, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    grants.grant(source_group, actor=superuser, level=Level.VIEW, department=departments["销售部"])
    return sales_operator


def xlsx_bytes(rows, *, phantom_row: int | None = None) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    for row in rows:
        sheet.append(row)
    if phantom_row:
        # A formatted but empty cell: Excel's "used range" then reaches this row.
        sheet.cell(row=phantom_row, column=1).font = Font(bold=True)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
