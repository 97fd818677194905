"""import_customers / export_customers exactly as docs/import-export.md#commands says."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command

from customers.models import Customer

pytestmark = pytest.mark.django_db
KEYS = {
    "rows",
    "valid",
    "invalid",
    "customers_created",
    "customers_updated",
    "assignments_added",
    "errors",
}


def call(*args):
    import io

    out = io.StringIO()
    code = 0
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    except SystemExit as exc:
        code = exc.code
    return code, json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.csv"
    path.write_text("external_userid,phone,name,tags\nwm1,13800138000,张三,意向:高\n", "utf-8")
    return path


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("external_userid,name,tags\nwm1,张三,意向:高\nwm 2,x,\n", "utf-8")
    return path


def test_json_summary_keys_and_success(good_file, intent_group):
    code, summary = call("import_customers", str(good_file), "--json")
    assert code == 0 and set(summary) == KEYS
    assert summary["customers_created"] == 1 and summary["assignments_added"] == 1


def test_strict_rejection_exits_non_zero_and_applies_nothing(bad_file, intent_group):
    code, summary = call("import_customers", str(bad_file), "--json")
    assert code == 1 and Customer.objects.count() == 0
    assert summary["errors"] == [
        {
            "line": 3,
            "column": "external_userid",
            "code": "invalid_external_userid",
            "message": summary["errors"][0]["message"],
        }
    ]


def test_skip_invalid_and_dry_run(bad_file, intent_group):
    code, summary = call("import_customers", str(bad_file), "--dry-run", "--json")
    assert code == 0 and Customer.objects.count() == 0 and summary["invalid"] == 1
    code, summary = call("import_customers", str(bad_file), "--skip-invalid", "--json")
    assert code == 0 and Customer.objects.count() == 1 and summary["valid"] == 1


def test_user_option_applies_their_permissions(good_file, outsider, intent_group):
    code, summary = call("import_customers", str(good_file), "--user", outsider.username, "--json")
    assert code == 1 and summary["errors"][0]["code"] == "unknown_tag_group"


def test_export_command_round_trip(good_file, intent_group, tmp_path):
    call("import_customers", str(good_file), "--json")
    for fmt in ("csv", "xlsx"):
        out = tmp_path / f"out.{fmt}"
        code, summary = call("export_customers", "--format", fmt, "--output", str(out), "--json")
        assert code == 0 and summary["rows"] == 1 and out.stat().st_size > 0
        code, summary = call("import_customers", str(out), "--json")
        assert code == 0 and summary["assignments_added"] == 0 and summary["customers_updated"] == 0


def test_export_command_segment(good_file, intent_group, tmp_path):
    call("import_customers", str(good_file), "--json")
    out = tmp_path / "seg.csv"
    tag_id = intent_group.tags.get(name="中").pk
    code, summary = call(
        "export_customers", "--segment", json.dumps({"tag": tag_id}), "--output", str(out), "--json"
    )
    assert code == 0 and summary["rows"] == 0
    tag_id = intent_group.tags.get(name="高").pk
    code, summary = call(
        "export_customers", "--segment", json.dumps({"tag": tag_id}), "--output", str(out), "--json"
    )
    assert summary["rows"] == 1


def test_lenient_with_no_valid_row_is_a_rejection(tmp_path):
    path = tmp_path / "all-bad.csv"
    path.write_text("external_userid,name\nwm 1,x\n", "utf-8")
    code, summary = call("import_customers", str(path), "--skip-invalid", "--json")
    assert code == 1 and summary["valid"] == 0 and Customer.objects.count() == 0
