"""Tag and group names refuse text-direction controls and names with nothing visible, through
every door: services (so the API), admin forms, and the import (``malformed_tag``)."""

from __future__ import annotations

import pytest

from customers.importing import import_file
from tagging import services
from tagging.errors import InvalidTagName
from tagging.models import Tag, TagGroup
from tagging.names import BIDI_CONTROLS, InvalidName, validate_name, visible

BIDI = sorted(BIDI_CONTROLS)
INVISIBLE_ONLY = ["\u200b", "\u200b\u2060", "\u3000\u200b\u3000", "\ufeff", "\u200e\u200f"]


def test_the_bidi_controls_are_exactly_the_overrides_embeddings_and_isolates():
    assert [f"{ord(c):04X}" for c in BIDI] == [
        "202A", "202B", "202C", "202D", "202E", "2066", "2067", "2068", "2069",
    ]  # fmt: skip


@pytest.mark.parametrize("char", BIDI, ids=[f"U+{ord(c):04X}" for c in BIDI])
def test_bidi_controls_are_refused(char):
    with pytest.raises(InvalidName) as info:
        validate_name(f"VIP{char}客户")
    assert info.value.code == "forbidden_character"
    assert f"U+{ord(char):04X}" in str(info.value) and char not in str(info.value)


@pytest.mark.parametrize("name", INVISIBLE_ONLY)
def test_names_with_nothing_visible_are_refused(name):
    with pytest.raises(InvalidName) as info:
        validate_name(name)
    assert info.value.code == "empty_name"


@pytest.mark.parametrize("name", ["高意向", "🍼 母婴", "👨\u200d👩\u200d👧 家庭", "VIP", "a b"])
def test_ordinary_names_pass(name):
    assert validate_name(name) == name


def test_visible_spells_out_invisible_characters():
    assert visible("a\u202eb\u200bc") == "a⟨U+202E⟩b⟨U+200B⟩c"


@pytest.mark.django_db
def test_services_refuse_and_write_nothing(superuser, source_group):
    with pytest.raises(InvalidTagName):
        services.create_tag(source_group, "官网\u202e", actor=superuser)
    with pytest.raises(InvalidTagName):
        services.create_group(name="\u200b", actor=superuser, exclusive=False)
    with pytest.raises(InvalidTagName):
        services.update_tag(source_group.tags.first(), actor=superuser, name="\u2066x\u2069")
    assert not Tag.objects.filter(name__contains="\u202e").exists()
    assert not TagGroup.objects.filter(name="\u200b").exists()


@pytest.mark.django_db
def test_the_import_reports_malformed_tag(superuser, intent_group):
    data = (
        "external_userid,phone,name,tags,意向\n"
        "wm1,,甲,意向:高\u202e,\n"
        "wm2,,乙,\u200b:高,\n"
        "wm3,,丙,,\u2067高\u2069\n"
        "wm4,,丁,意向:高,\n"
    ).encode()
    report = import_file(data, user=superuser, filename="f.csv", dry_run=True)
    found = [(e.line, e.code) for e in report.errors]
    assert found == [(2, "malformed_tag"), (3, "malformed_tag"), (4, "malformed_tag")]
    for error in report.errors:
        assert not BIDI_CONTROLS & set(error.message), error.message  # echoed spelled out
    assert "U+202E" in report.errors[0].message
    assert report.valid == 1
