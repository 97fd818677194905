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
    # django-axes (login lockout; no zh-hans catalogue of its own)
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("Access Attempt"),
    gettext_noop("Access lock out"),
    gettext_noop("Attempt Time"),
    gettext_noop("Attempt Remaining"),
    gettext_noop("Clean up expired attempts"),
    gettext_noop("Expires At"),
    gettext_noop("The time when access attempt expires and is no longer valid."),
    gettext_noop("Failed Logins"),
    gettext_noop("Form Data"),
    gettext_noop("GET Data"),
    gettext_noop("POST Data"),
    gettext_noop("HTTP Accept"),
    gettext_noop("IP Address"),
    gettext_noop("Locked Out"),
    gettext_noop("Logout Time"),
    gettext_noop("Meta Data"),
    gettext_noop("Not set"),
    gettext_noop("Path"),
    gettext_noop("Session key hash (sha256)"),
    gettext_noop("User Agent"),
    gettext_noop("Username"),
    # django-guardian's models (their names appear in permission lists)
    gettext_noop("group object permission"),
    gettext_noop("group object permissions"),
    gettext_noop("user object permission"),
    gettext_noop("user object permissions"),
]
