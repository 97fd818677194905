"""Admin import and export of customers (docs/import-export.md), behind django-import-export's admin
buttons.

``CustomerImportExportMixin`` keeps the library's integration (its Import/Export buttons, URL
names ``admin:customers_customer_import`` / ``_process_import`` / ``_export`` and its format
classes) but routes every request to TagDesk's services, because the library's own pipeline is
wrong for this data (see customers/resources.py): upload → dry-run preview with every error →
confirm → result; files over ``TAGDESK_IMPORT_ASYNC_THRESHOLD`` rows run as a Celery task with a
live progress page. Exports stream (flat memory) and contain only what the user may see.

Views are adapters: they check who may see a job, call customers.importing / customers.tasks /
customers.exporting and render. Everything echoed back is escaped by the templates.
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.files.base import ContentFile
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV, XLSX

from config.params import is_id
from customers import tasks
from customers.exporting import HEADERS, export_customers, group_queryset, neutralise
from customers.import_readers import UnreadableFile, expanded_size, read_records
from customers.importing import Mode
from customers.models import ImportJob
from customers.resources import CustomerResource, TagAssignmentResource
from permissions import policy
from tagging.errors import TaggingError

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
ERRORS_SHOWN = 1000
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ImportUploadForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy("CSV (UTF-8 or GBK/GB18030) or XLSX."),
    )
    mode = forms.ChoiceField(
        label=gettext_lazy("Mode"),
        choices=ImportJob.Mode.choices,
        initial=ImportJob.Mode.CUSTOMERS,
    )
    skip_invalid = forms.BooleanField(
        label=gettext_lazy("Skip invalid rows"),
        required=False,
        help_text=gettext_lazy(
            "Apply the good rows and download the rejected ones; otherwise any error applies "
            "nothing."
        ),
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(
                _("The file is larger than %(mb)d MB.") % {"mb": MAX_UPLOAD_BYTES // 2**20}
            )
        if not upload.name.lower().endswith((".csv", ".xlsx", ".txt")):
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        return upload


def count_records(data: bytes | None, filename: str) -> int | None:
    """Data records of a small file (header excluded; 0 when unreadable: the job reports why),
    or None for a file that expands beyond TAGDESK_IMPORT_INLINE_MAX_KB: that one is counted on
    a worker, so that no upload request reads a big file (or a decompression bomb)."""
    if data is None or expanded_size(data) > settings.TAGDESK_IMPORT_INLINE_MAX_KB * 1024:
        return None
    try:
        _fmt, records = read_records(data, filename)
        return max(sum(1 for _record in records) - 1, 0)
    except UnreadableFile:
        return 0


def start_job(request, job: ImportJob, rows: int | None) -> None:
    """Small files inline (the page shows the result at once); big ones, and files not counted
    (``rows`` None), on a worker. With the broker down the job is marked failed (its page says
    why) and the user is told."""
    ImportJob.objects.filter(pk=job.pk).update(rows_total=rows)
    if rows is None or rows > settings.TAGDESK_IMPORT_ASYNC_THRESHOLD:
        tasks.enqueue(job)
        refused = ImportJob.objects.filter(pk=job.pk, status=ImportJob.Status.FAILED).first()
        if refused is not None:  # the broker refused the task: the job says why
            messages.error(request, refused.error_message)
    else:
        tasks.process_job(job.pk)


class CustomerImportExportMixin(ImportExportMixin):
    """Add to CustomerAdmin's bases: import/export buttons, pages and an export action."""

    resource_classes = [CustomerResource, TagAssignmentResource]
    # Keep the host admin's change_list.html; the buttons come from
    # templates/admin/customers/customer/change_list_object_tools.html.
    import_export_change_list_template = None
    formats = [CSV, XLSX]
    import_formats = [CSV, XLSX]
    export_formats = [CSV, XLSX]

    # -- permissions -----------------------------------------------------------------------------

    def has_import_permission(self, request):
        # Row-level rights come from the policy (tags: EDIT on the group; customers: scope).
        return self.has_view_permission(request)

    def has_export_permission(self, request):
        return self.has_view_permission(request)

    def _job_for(self, request, job_id: int) -> ImportJob:
        job = get_object_or_404(ImportJob, pk=job_id)
        if job.user_id != request.user.pk and not request.user.is_superuser:
            raise Http404  # someone else's import: as if it did not exist
        return job

    # -- urls ------------------------------------------------------------------------------------

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        mine = [
            path(
                "import/<int:job_id>/",
                view(self.import_job_view),
                name="{}_{}_import_job".format(*info),
            ),
            path(
                "import/<int:job_id>/rejected.csv",
                view(self.rejected_rows_view),
                name="{}_{}_import_rejected".format(*info),
            ),
            path(
                "import/template/",
                view(self.import_template_view),
                name="{}_{}_import_template".format(*info),
            ),
            path(
                "export/group/<int:group_id>/",
                view(self.export_group_view),
                name="{}_{}_export_group".format(*info),
            ),
        ]
        return mine + super().get_urls()

    def _context(self, request, **extra):
        return {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "has_view_permission": self.has_view_permission(request),
            **extra,
        }

    # -- import ----------------------------------------------------------------------------------

    def import_action(self, request, **kwargs):
        """Upload: store the file, run a dry run (inline or on a worker), show its preview."""
        if not self.has_import_permission(request):
            raise PermissionDenied
        form = ImportUploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            data = upload.read()
            job = ImportJob(
                user=request.user,
                original_name=upload.name[:255],
                mode=form.cleaned_data["mode"],
                dry_run=True,
                skip_invalid=form.cleaned_data["skip_invalid"],
            )
            job.file.save(upload.name, ContentFile(data), save=False)
            job.save()
            start_job(request, job, count_records(data, upload.name))
            return HttpResponseRedirect(self._job_url(job))
        jobs = ImportJob.objects.filter(user=request.user).order_by("-created_at")[:10]
        return TemplateResponse(
            request,
            "admin/customers/import_upload.html",
            self._context(
                request,
                title=_("Import customers and tags"),
                form=form,
                jobs=jobs,
                threshold=settings.TAGDESK_IMPORT_ASYNC_THRESHOLD,
                headers=HEADERS,
            ),
        )

    def process_import(self, request, **kwargs):
        """Confirm a dry run: the same file, applied (strict or lenient as chosen)."""
        if request.method != "POST" or not self.has_import_permission(request):
            raise PermissionDenied
        job_id = request.POST.get("job", "")
        if not is_id(job_id):
            raise Http404  # a forged or garbled form: no such import
        preview = self._job_for(request, int(job_id))
        if not preview.dry_run or preview.status != ImportJob.Status.DONE:
            raise PermissionDenied
        errors = (preview.result or {}).get("errors", [])
        if errors and not preview.skip_invalid:
            messages.error(request, _("Fix the errors first: a strict import applies nothing."))
            return HttpResponseRedirect(self._job_url(preview))
        job = ImportJob.objects.create(
            user=request.user,
            file=preview.file.name,
            original_name=preview.original_name,
            mode=preview.mode,
            dry_run=False,
            skip_invalid=preview.skip_invalid,
        )
        with preview.file.open("rb") as handle:
            small = expanded_size(handle) <= settings.TAGDESK_IMPORT_INLINE_MAX_KB * 1024
        start_job(request, job, preview.rows_total if small else None)
        return HttpResponseRedirect(self._job_url(job))

    def _job_url(self, job: ImportJob) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_import_job",
            args=[job.pk],
        )

    def import_job_view(self, request, job_id: int):
        """Progress while running (the page refreshes itself), then the result or preview."""
        job = self._job_for(request, job_id)
        result = job.result or {}
        errors = result.get("errors", [])
        can_confirm = (
            job.dry_run
            and job.status == ImportJob.Status.DONE
            and result.get("valid", 0) > 0
            and (not errors or job.skip_invalid)
        )
        percent = int(100 * job.rows_done / job.rows_total) if job.rows_total else 0
        return TemplateResponse(
            request,
            "admin/customers/import_job.html",
            self._context(
                request,
                title=_("Import of %(name)s") % {"name": job.original_name},
                job=job,
                result=result,
                errors=errors[:ERRORS_SHOWN],
                more_errors=max(len(errors) - ERRORS_SHOWN, 0),
                can_confirm=can_confirm,
                percent=percent,
                elapsed=(job.finished_at or timezone.now()) - (job.started_at or job.created_at),
            ),
        )

    def rejected_rows_view(self, request, job_id: int):
        """The rejected rows with a reason column (formula-neutralised)."""
        job = self._job_for(request, job_id)
        result = job.result or {}
        out = io.StringIO()
        out.write("\ufeff")
        writer = csv.writer(out)
        writer.writerow([_("line"), *result.get("header", []), _("reason")])
        for line, values, reason in result.get("rejected", []):
            writer.writerow([line, *(neutralise(v) for v in values), neutralise(reason)])
        response = HttpResponse(out.getvalue().encode("utf-8"), content_type=CONTENT_TYPES["csv"])
        response["Content-Disposition"] = f'attachment; filename="rejected-{job.pk}.csv"'
        return response

    def import_template_view(self, request):
        """A ready-to-fill file: long layout (tags column) or wide (a column per editable group),
        English or Chinese headers, CSV or XLSX."""
        layout = request.GET.get("layout", "long")
        language = request.GET.get("language", "en")
        fmt = request.GET.get("format", "csv")
        if layout not in ("long", "wide") or language not in HEADERS or fmt not in CONTENT_TYPES:
            raise Http404
        header = list(HEADERS[language][:3])
        example = ["wmExample_01", "13800138000", _("Example customer")]
        editable = list(
            policy.visible_groups(request.user, policy.Level.EDIT)
            .select_related("owner")
            .prefetch_related("tags")
            .order_by("sort_order", "pk")
        )
        if layout == "long":
            header.append(HEADERS[language][3])
            first = next((g for g in editable if g.tags.all()), None)
            example.append(f"{first.label}:{first.tags.all()[0].name}" if first else "")
        else:
            for group in editable:
                header.append(group.label)
                tags = [t.name for t in group.tags.all() if t.status == "active"]
                example.append(tags[0] if tags else "")
        rows = [header, [neutralise(v) for v in example]]
        if fmt == "csv":
            out = io.StringIO()
            out.write("\ufeff")
            csv.writer(out).writerows(rows)
            body = out.getvalue().encode("utf-8")
        else:
            from openpyxl import Workbook

            workbook = Workbook()
            for row in rows:
                workbook.active.append(row)
            buffer = io.BytesIO()
            workbook.save(buffer)
            body = buffer.getvalue()
        response = HttpResponse(body, content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = (
            f'attachment; filename="customers-template-{layout}-{language}.{fmt}"'
        )
        return response

    # -- export ----------------------------------------------------------------------------------

    def export_action(self, request):
        """The filtered changelist (same filters as the page), streamed as CSV or XLSX."""
        if not self.has_export_permission(request):
            raise PermissionDenied
        fmt = request.GET.get("_format")
        language = request.GET.get("_language", "en")
        if fmt is None:
            query = request.GET.copy()
            return TemplateResponse(
                request,
                "admin/customers/export_form.html",
                self._context(
                    request,
                    title=_("Export customers"),
                    query=query.urlencode(),
                    count_hint=None,
                ),
            )
        if fmt not in CONTENT_TYPES or language not in HEADERS:
            raise Http404
        request.GET = request.GET.copy()
        for key in ("_format", "_language"):
            request.GET.pop(key, None)
        queryset = self.get_export_queryset(request)
        return stream_export(request.user, fmt, queryset=queryset, language=language)

    def export_group_view(self, request, group_id: int):
        """A tag group's customers with that group's tags (404 for a group one may not view)."""
        fmt = request.GET.get("_format", "csv")
        if fmt not in CONTENT_TYPES:
            raise Http404
        try:
            queryset, group_ids = group_queryset(request.user, group_id)
        except TaggingError as exc:
            raise Http404 from exc
        return stream_export(
            request.user, fmt, queryset=queryset, group_ids=group_ids, name=f"group-{group_id}"
        )


def stream_export(user, fmt: str, *, name: str = "customers", **kwargs) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        export_customers(user, fmt, **kwargs), content_type=CONTENT_TYPES[fmt]
    )
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.{fmt}"'
    return response


class ImportJobAdmin(admin.ModelAdmin):
    """Read-only list of imports; each links to its progress/result page."""

    list_display = [
        "original_name",
        "user",
        "mode",
        "dry_run",
        "skip_invalid",
        "status",
        "rows_done",
        "rows_total",
        "errors_so_far",
        "attempts",
        "heartbeat_at",
        "created_at",
    ]
    list_filter = ["status", "mode", "dry_run"]
    readonly_fields = [f.name for f in ImportJob._meta.fields]
    actions = ["resume_jobs"]

    @admin.action(
        description=gettext_lazy("Resume selected imports (failed, or lost their worker)")
    )
    def resume_jobs(self, request, queryset):
        resumed = [pk for pk in queryset.values_list("pk", flat=True) if tasks.resume_job(pk)]
        skipped = queryset.count() - len(resumed)
        if resumed:
            self.message_user(
                request,
                ngettext(
                    "%(count)d import resumed: it goes on after its last committed batch.",
                    "%(count)d imports resumed: they go on after their last committed batch.",
                    len(resumed),
                )
                % {"count": len(resumed)},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d import was left alone: it finished or its worker is alive.",
                    "%(count)d imports were left alone: they finished or their worker is alive.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

    def get_queryset(self, request):
        queryset = super().get_queryset(request).select_related("user")
        return queryset if request.user.is_superuser else queryset.filter(user=request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff and (
            obj is None or obj.user_id == request.user.pk or request.user.is_superuser
        )

    def has_module_permission(self, request):
        return request.user.is_staff

    def change_view(self, request, object_id, form_url="", extra_context=None):
        return HttpResponseRedirect(
            reverse("admin:customers_customer_import_job", args=[int(object_id)])
        )


if not admin.site.is_registered(ImportJob):
    admin.site.register(ImportJob, ImportJobAdmin)

__all__ = ["CustomerImportExportMixin", "ImportJobAdmin", "Mode"]
