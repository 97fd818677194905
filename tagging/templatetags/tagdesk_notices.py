"""``{% proposal_notices as notices %}`` on the admin index (tagging.notifications)."""

from django import template

from tagging.notifications import open_reviews, proposal_decisions

register = template.Library()


@register.simple_tag(takes_context=True)
def proposal_notices(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    return {**proposal_decisions(user), "reviews": open_reviews(user)}
