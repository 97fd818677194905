"""Tagging one customer from its own change page, and the tag search every admin tag picker and
filter uses (the same ranked prefix / substring / pinyin search as the API's ``/tags/search``).

A mixin of ``CustomerAdmin``: the change page shows a :class:`~customers.forms.CustomerTagForm`
above the customer's fields, posted to ``<id>/tags/``; the change goes through
``tagging.services.change_tags`` (atomic, audited), scoped by ``permissions.policy``."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.http import Http404, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers.forms import CustomerTagForm
from permissions import policy
from tagging import services, suggestion_actions, suggestions
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, TagKind, TagStatus
from tagging.search import search_tags

MAX_SEARCH_LENGTH = 64


class CustomerTaggingMixin:
    """Adds the customer page's tag picker and the admin's tag search endpoint."""

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        mine = [
            path(
                "tag-search/",
                view(self.tag_search_view),
                name="{}_{}_tag_search".format(*info),
            ),
            path(
                "<path:object_id>/tag-suggestions/",
                view(self.tag_suggestion_view),
                name="{}_{}_tag_suggestion".format(*info),
            ),
            path(
                "<path:object_id>/tags/",
                view(self.customer_tags_view),
                name="{}_{}_tags".format(*info),
            ),
        ]
        return mine + super().get_urls()

    def tag_form(self, request, customer, data=None) -> CustomerTagForm | None:
        """The picker for this user and customer, or None when the user may edit no group or
        may only view this customer (a view-only share)."""
        if not policy.editable_customers(request.user).filter(pk=customer.pk).exists():
            return None
        form = CustomerTagForm(data, user=request.user, customer=customer)
        return form if form.group_fields else None

    def tag_suggestions(self, request, customer) -> list:
        """The customer's top tag suggestions for this user (docs/suggestions.md), shown beside
        the picker; only called when the user may tag the customer."""
        return suggestions.for_customer(request.user, customer.pk)

    def tag_suggestion_view(self, request, object_id):
        """POST ``tag`` and ``decision`` (accept / dismiss) for one suggested tag: accept gives
        the tag through the assignment service (source manual), dismiss stops suggesting it
        for this customer. Both audited; the same checks as the picker."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        customer = self.get_object(request, unquote(object_id))  # the user's scope, else 404
        if customer is None:
            raise Http404(_("This customer does not exist."))
        decision = request.POST.get("decision")
        try:
            tag_id = int(request.POST.get("tag", ""))
        except ValueError:
            tag_id = None
        if decision not in {"accept", "dismiss"} or tag_id is None:
            self.message_user(
                request, _("Choose a suggested tag to accept or dismiss."), messages.ERROR
            )
            return self._back_to(customer)
        user = request.user
        try:
            policy.require_customers(user, [customer.pk], policy.Level.EDIT)
            (tag,) = policy.require_tags(user, [tag_id], policy.Level.EDIT)
            if tag.group.kind == TagKind.AUTO:
                raise TaggingError(
                    _("“%(tag)s” is an auto tag: only its rule adds or removes it.") % {"tag": tag}
                )
            if decision == "accept":
                result = suggestion_actions.accept_customer_suggestion(
                    customer.pk, tag, actor=user, source=AssignmentSource.MANUAL
                )
                message = (
                    _("“%(tag)s” added.")
                    if result.added
                    else _("The customer already has “%(tag)s”.")
                ) % {"tag": tag}
            else:
                suggestion_actions.dismiss_customer_suggestion(
                    customer.pk, tag, actor=user, source=AssignmentSource.MANUAL
                )
                message = _("“%(tag)s” will not be suggested for this customer again.") % {
                    "tag": tag
                }
        except TaggingError as exc:  # the policy's refusals are TaggingErrors too
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, message, messages.SUCCESS)
        return self._back_to(customer)

    def customer_tags_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        customer = self.get_object(request, unquote(object_id))  # the user's scope, else 404
        if customer is None:
            raise Http404(_("This customer does not exist."))
        form = self.tag_form(request, customer, request.POST)
        if form is None:
            self.message_user(
                request,
                _("There are no tags you may add to or remove from this customer."),
                messages.ERROR,
            )
            return self._back_to(customer)
        if form.is_valid():
            try:
                message = self._apply_customer_tags(request, customer, form.cleaned_data)
            except TaggingError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, message, messages.SUCCESS)
                return self._back_to(customer)
        # Show the page again with the user's choices and the errors (nothing was written).
        request.method = "GET"
        return self.change_view(request, object_id, extra_context={"tag_form": form})

    def _apply_customer_tags(self, request, customer, data) -> str:
        user = request.user
        # Re-checked here, whatever the form offered: the level may have changed since.
        policy.require_customers(user, [customer.pk], policy.Level.EDIT)
        add = policy.require_tags(user, data["add"], policy.Level.EDIT)
        remove = policy.require_tags(user, data["remove"], policy.Level.EDIT)
        added, removed = services.change_tags(
            [customer.pk],
            add=add,
            remove=remove,
            actor=user,
            source=AssignmentSource.MANUAL,
            reason=data["reason"],
            expires_at=data["expires_at"],
        )
        parts = []
        if added.added:
            parts.append(
                ngettext("%(n)d tag added.", "%(n)d tags added.", len(added.added))
                % {"n": len(added.added)}
            )
        removed_count = len(removed.removed) + len(added.replaced)
        if removed_count:
            parts.append(
                ngettext("%(n)d tag removed.", "%(n)d tags removed.", removed_count)
                % {"n": removed_count}
            )
        return " ".join(parts) or _("The tags were already as chosen.")

    def _back_to(self, customer):
        opts = self.opts
        return redirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[customer.pk])
        )

    def tag_search_view(self, request):
        """``?q=…&level=view|edit``: ids of the matching tags the user may view (or edit; auto
        tags never), ranked, for pickers to show. Archived tags count for ``view`` (filters
        still find customers carrying them); pending ones never."""
        query = (request.GET.get("q") or "").strip()[:MAX_SEARCH_LENGTH]
        level = request.GET.get("level", "view")
        if level not in {"view", "edit"}:
            return JsonResponse(
                {
                    "error": {
                        "code": "invalid",
                        "message": _("level is view or edit."),
                        "details": None,
                    }
                },
                status=400,
            )
        if level == "edit":
            candidates = policy.visible_tags(request.user, policy.Level.EDIT).exclude(
                group__kind=TagKind.AUTO
            )
        else:
            candidates = policy.visible_tags(request.user, include_inactive=True).exclude(
                status=TagStatus.PENDING
            )
        hits = search_tags(candidates, query) if query else []
        return JsonResponse(
            {
                "query": query,
                "results": [
                    {
                        "id": hit.tag["id"],
                        "name": hit.tag["name"],
                        "group_name": hit.tag["group_name"],
                        "match": hit.match,
                    }
                    for hit in hits
                ],
            }
        )
