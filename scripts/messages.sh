#!/usr/bin/env bash
# Refresh the zh-hans catalogue from the source and compile it:
#   ./scripts/messages.sh
# Entries carry no source locations and are sorted by msgid, so two branches that add strings
# rarely touch the same lines of django.po. New entries come out with an empty msgstr: translate
# them (tests/test_i18n.py fails on an empty or fuzzy one), then run this again to compile.
set -euo pipefail
# shellcheck source=scripts/_venv.sh
. "$(dirname "${BASH_SOURCE[0]}")/_venv.sh"
PO=locale/zh_Hans/LC_MESSAGES/django.po
python manage.py makemessages -l zh_Hans --no-location --no-obsolete \
    --ignore=.venv --ignore=bench --ignore=tests --ignore=var >/dev/null
msgcat --sort-output --no-location --no-wrap -o "$PO.sorted" "$PO"
mv "$PO.sorted" "$PO"
python manage.py compilemessages -l zh_Hans --ignore=.venv >/dev/null
untranslated=$(msgattrib --untranslated --no-obsolete "$PO" | grep -c '^msgid ' || true)
fuzzy=$(msgattrib --only-fuzzy --no-obsolete "$PO" | grep -c '^msgid ' || true)
echo "django.po: $(( untranslated > 0 ? untranslated - 1 : 0 )) untranslated, $(( fuzzy > 0 ? fuzzy - 1 : 0 )) fuzzy"
