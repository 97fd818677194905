from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _
from django.views.generic import RedirectView

# The admin is TagDesk's user interface: its name, not "Django administration", and no
# "View site" link (the site root is the admin itself).
admin.site.site_header = _("TagDesk")
admin.site.site_title = _("TagDesk admin")
admin.site.index_title = _("TagDesk home")
admin.site.site_url = None

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("wecom/", include("wecom.urls")),
]

# JSON in the one error shape under /api/, Django's pages elsewhere (api/errors.py).
handler400 = "api.errors.bad_request"
handler403 = "api.errors.permission_denied"
handler404 = "api.errors.page_not_found"
handler500 = "api.errors.server_error"
