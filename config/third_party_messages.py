"""Chinese for strings of Django and the libraries TagDesk uses that their own zh-hans
catalogues lack (found by tests/admin/test_every_page_zh.py). Never imported: the strings are
here so that ``makemessages`` keeps them in TagDesk's catalogue, which (``LOCALE_PATHS``) takes
precedence over every app's own."""

from django.utils.translation import gettext_noop

THIRD_PARTY_MESSAGES = [
    # django.contrib.admin: app_list.html (column captions read by screen readers)
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    # django.contrib.admin: auth/user/add_form.html
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
    # django-guardian's models (their names appear in permission lists)
    gettext_noop("group object permission"),
    gettext_noop("group object permissions"),
    gettext_noop("user object permission"),
    gettext_noop("user object permissions"),
]
