"""渠道活码 states (issue 10 §5): a contact added through a contact way carries its ``state``.

A :class:`~wecom.models.WecomChannelState` maps a state (at most 30 characters, as WeCom allows)
to a source channel label and a set of active corporate tags. :func:`save_channel_state` is the
one way to configure one: the tags must be tags the configuring user may add to customers
(``permissions.policy``). :func:`apply_channel_states` runs inside the contact's transaction
(``contacts.apply_contact``, so both the add_external_contact callback and the contact sync):
each relationship whose state has not been applied yet gives the customer the state's tags
through the assignment service (source ``sync``, audited; the outbox then sends them to WeCom)
and its channel label as source channel. ``WecomRelation.state_applied`` remembers the state
applied, so a retried callback or a later sync applies nothing twice and a tag removed by hand
afterwards stays removed. A state nobody configured is recorded without tags, not as an error.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.services import CustomerError, upsert_customer
from permissions import policy
from tagging import services as tagging_services
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, Tag, TagKind, TagStatus
from wecom.models import WecomChannelState, WecomRelation
from wecom.services.common import record_issue

STATE_LIMIT = WecomChannelState.STATE_LIMIT
CHANNEL_LIMIT = 64


class ChannelStateInvalid(Exception):
    """A configuration refused, with the form field it concerns and a stable code."""

    def __init__(self, message: str, *, code: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field


def clean_state(state: str) -> str:
    state = (state or "").strip()
    if not state:
        raise ChannelStateInvalid(_("Enter the state."), code="empty_state", field="state")
    if len(state) > STATE_LIMIT:
        raise ChannelStateInvalid(
            _("The state may be at most %(limit)d characters (WeCom's limit); it has %(n)d.")
            % {"limit": STATE_LIMIT, "n": len(state)},
            code="state_too_long",
            field="state",
        )
    return state


def check_tags(user: Any, tags: Iterable[Any]) -> list[Tag]:
    """The tags, if ``user`` may add every one to customers and each is an active corporate tag
    (two of one exclusive group cannot both be given). Raises :class:`ChannelStateInvalid`."""
    try:
        loaded = policy.require_tags(user, tags, policy.Level.EDIT)
    except (policy.NotVisible, policy.Denied) as exc:
        raise ChannelStateInvalid(str(exc), code="tag_not_allowed", field="tags") from exc
    for tag in loaded:
        if tag.group.kind != TagKind.CORPORATE:
            raise ChannelStateInvalid(
                _("“%(tag)s” is not a corporate tag; only corporate tags can be given by a state.")
                % {"tag": tag.name},
                code="tag_not_corporate",
                field="tags",
            )
        if tag.status != TagStatus.ACTIVE:
            raise ChannelStateInvalid(
                _("“%(tag)s” is %(status)s; only active tags can be given by a state.")
                % {"tag": tag.name, "status": tag.get_status_display()},
                code="tag_not_active",
                field="tags",
            )
    seen: dict[int, Tag] = {}
    for tag in loaded:
        if tag.group.exclusive:
            if tag.group_id in seen:
                raise ChannelStateInvalid(
                    _("“%(a)s” and “%(b)s” are in the exclusive group “%(group)s”.")
                    % {"a": seen[tag.group_id].name, "b": tag.name, "group": tag.group.name},
                    code="exclusive_conflict",
                    field="tags",
                )
            seen[tag.group_id] = tag
    return loaded


@transaction.atomic
def save_channel_state(
    *,
    actor: Any,
    state: str,
    channel: str = "",
    tags: Iterable[Any] = (),
    instance: WecomChannelState | None = None,
) -> WecomChannelState:
    """Create or change a state's configuration (admin). Refuses, writing nothing, an empty state
    or one over 30 characters, a state configured already, a channel over 64 characters and tags
    :func:`check_tags` refuses. Configuring a state recorded as unknown takes that row."""
    state = clean_state(state)
    channel = (channel or "").strip()
    if len(channel) > CHANNEL_LIMIT:
        raise ChannelStateInvalid(
            _("The source channel may be at most %(limit)d characters.") % {"limit": CHANNEL_LIMIT},
            code="channel_too_long",
            field="channel",
        )
    tag_list = check_tags(actor, tags)
    other = WecomChannelState.objects.select_for_update().filter(state=state)
    if instance is not None and instance.pk:
        other = other.exclude(pk=instance.pk)
    taken = other.first()
    if taken is not None and taken.configured:
        raise ChannelStateInvalid(
            _("The state “%(state)s” is configured already.") % {"state": state},
            code="duplicate_state",
            field="state",
        )
    if instance is None or not instance.pk:
        instance = taken or WecomChannelState(state=state)
    elif taken is not None:  # renamed onto a state seen but not configured: keep one row
        instance.contacts_added += taken.contacts_added
        instance.last_added_at = max(
            (d for d in (instance.last_added_at, taken.last_added_at) if d), default=None
        )
        taken.delete()
    instance.state = state
    instance.channel = channel
    instance.configured = True
    instance.updated_by = actor
    instance.updated_at = timezone.now()
    instance.save()
    instance.tags.set(tag_list)
    return instance


def apply_channel_states(customers: Iterable[Any]) -> dict[str, int]:
    """Apply the states of these customers' WeCom relationships not applied yet (see the module
    docstring). Runs in the caller's transaction; returns counts. Set-based per state, not per
    contact, so a page of the contact sync costs the same number of queries whatever its size
    (tests/wecom/test_contacts_queries.py). Tags archived or moved since the state was
    configured are left out and logged as sync issues."""
    by_pk = {c.pk: c for c in customers}
    stats: Counter[str] = Counter()
    if not by_pk:
        return {}
    pending = list(
        WecomRelation.objects.filter(customer_id__in=by_pk)
        .exclude(state="")
        .exclude(state=F("state_applied"))
        .order_by("id")
        .values_list("pk", "customer_id", "state")
    )
    if not pending:
        return {}
    relations_by_state: dict[str, list[tuple[int, int]]] = {}
    for pk, customer_id, state in pending:
        relations_by_state.setdefault(state, []).append((pk, customer_id))
    configs = {
        c.state: c
        for c in WecomChannelState.objects.select_for_update()
        .filter(state__in=relations_by_state)
        .prefetch_related("tags__group")
    }
    now = timezone.now()
    for state, relations in relations_by_state.items():
        config = configs.get(state)
        if config is None and len(state) <= STATE_LIMIT:
            config, _created = WecomChannelState.objects.get_or_create(
                state=state, defaults={"configured": False}
            )
        if config is None:  # longer than any contact way's state: not WeCom's, keep the raw value
            record_issue(
                "channel_state",
                state,
                "state_too_long",
                _("The state “%(state)s…” is longer than %(limit)d characters; not recorded.")
                % {"state": state[:STATE_LIMIT], "limit": STATE_LIMIT},
            )
        else:
            WecomChannelState.objects.filter(pk=config.pk).update(
                contacts_added=F("contacts_added") + len(relations), last_added_at=now
            )
            if not config.configured:
                stats["channel_states_unknown"] += len(relations)
            else:
                targets = [by_pk[cid] for cid in dict.fromkeys(cid for _pk, cid in relations)]
                stats["channel_tags_added"] += _give_tags(targets, config)
                for customer in targets:
                    _set_source(customer, config)
        WecomRelation.objects.filter(pk__in=[pk for pk, _cid in relations]).update(
            state_applied=state
        )
    return dict(stats)


def _give_tags(customers: list[Any], config: WecomChannelState) -> int:
    usable = []
    for tag in config.tags.all():
        if tag.status == TagStatus.ACTIVE and tag.group.kind == TagKind.CORPORATE:
            usable.append(tag)
        else:
            record_issue(
                "channel_state",
                config.state,
                "tag_unusable",
                _("“%(tag)s” of state “%(state)s” is no longer an active corporate tag; left out.")
                % {"tag": tag.name, "state": config.state},
            )
    if not usable:
        return 0
    try:
        result = tagging_services.assign_tags(
            [c.pk for c in customers],
            usable,
            actor=None,
            source=AssignmentSource.SYNC,
            reason=_("channel state “%(state)s”") % {"state": config.state},
        )
    except TaggingError as exc:  # e.g. the customer's corporate tag limit: nothing given
        record_issue("channel_state", config.state, exc.code, str(exc))
        return 0
    return len(result.added)


def _set_source(customer: Any, config: WecomChannelState) -> None:
    """The channel label as the customer's source channel, unless someone set another one (the
    contact sync fills an empty source with the raw state first)."""
    if not config.channel or customer.source not in ("", config.state):
        return
    if customer.source == config.channel or not customer.external_userid:
        return
    try:
        upsert_customer(
            external_userid=customer.external_userid,
            via=AssignmentSource.SYNC,
            source=config.channel,
        )
    except CustomerError as exc:
        record_issue("channel_state", config.state, exc.code, str(exc))
        return
    customer.source = config.channel
