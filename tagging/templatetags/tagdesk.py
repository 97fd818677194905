"""Template filters shared by TagDesk's admin pages: ``{% load tagdesk %}``."""

from __future__ import annotations

import datetime as dt

from django import template
from django.utils.translation import gettext as _

register = template.Library()


@register.filter
def duration(value: dt.timedelta | float | int | None) -> str:
    """A duration as people say it: "0.14 s", "12 s", "2 min 5 s", "1 h 3 min" (translated).
    Empty for None; negative durations (clock skew) read as zero."""
    if value is None or value == "":
        return ""
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return _("%(seconds)s s") % {"seconds": f"{seconds:.2f}"}
    if seconds < 60:
        return _("%(seconds)s s") % {"seconds": int(seconds)}
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return _("%(minutes)d min %(seconds)d s") % {"minutes": minutes, "seconds": secs}
    hours, minutes = divmod(minutes, 60)
    return _("%(hours)d h %(minutes)d min") % {"hours": hours, "minutes": minutes}
