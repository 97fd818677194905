"""``{% proposal_notices as notices %}`` on the admin index (tagging.notifications)."""

from django import template

from tagging.notifications import proposal_decisions

register = template.Library()


@register.simple_tag(takes_context=True)
def proposal_notices(context):
    request = context.get("request")
    return proposal_decisions(getattr(request, "user", None))
