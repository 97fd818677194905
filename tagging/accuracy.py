"""Accuracy checks (seed 004: 每周抽检5%的客户标签): a tag admin samples the customers of a tag
group or a segment; reviewers mark each sampled customer's tags correct, wrong or missing; the
report gives each tag's error rate with a Wilson confidence interval; fixes go through
:func:`tagging.services.assign_tags` / :func:`unassign_tags`.

The sample is reproducible: the population's ids, sorted, are sampled with ``random.Random(seed)``
— the same population and seed give the same customers. Every step is atomic and audited."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from permissions import policy
from tagging import segments
from tagging.errors import TaggingError
from tagging.models import (
    AccuracyCheck,
    AccuracyCheckItem,
    AccuracyMark,
    AssignmentSource,
    AuditAction,
    AuditEntry,
    Tag,
    TagAssignment,
    TagKind,
    TagStatus,
)
from tagging.services import assign_tags, unassign_tags

Z_95 = 1.959964


def sample_size(population: int, percent: Decimal | float) -> int:
    """``percent`` % of the population rounded up, at least 1 of a non-empty population, at most
    ``TAGDESK_ACCURACY_SAMPLE_MAX``."""
    if population <= 0:
        return 0
    wanted = math.ceil(population * Decimal(str(percent)) / 100)
    return max(1, min(wanted, population, settings.TAGDESK_ACCURACY_SAMPLE_MAX))


def draw_sample(ids: list[int], percent: Decimal | float, seed: int) -> list[int]:
    """The sampled ids, in draw order: reproducible for the same ids and seed."""
    population = sorted(set(ids))
    return random.Random(seed).sample(population, sample_size(len(population), percent))


@transaction.atomic
def start_check(
    *,
    name: str,
    actor: Any,
    group: Any = None,
    segment: Any = None,
    percent: Decimal | float | None = None,
    seed: int | None = None,
) -> AccuracyCheck:
    """Start a check of ``group`` (its customers: those carrying any of its tags) or of
    ``segment`` (its customers; the tags of its expression are judged), within the actor's
    customer scope. Tag admins only (the entry point checks). ``seed`` defaults to a random one,
    stored so the sample can be drawn again. Audited."""
    if (group is None) == (segment is None):
        raise TaggingError(_("Choose a tag group or a segment, not both."))
    percent = Decimal(
        str(percent if percent is not None else settings.TAGDESK_ACCURACY_SAMPLE_PERCENT)
    )
    if not Decimal("0.01") <= percent <= 100:
        raise TaggingError(_("The sample share is between 0.01 % and 100 %."))
    if seed is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    if group is not None:
        tags = list(group.tags.exclude(status=TagStatus.PENDING))
        population_ids = list(
            policy.visible_customers(actor)
            .filter(assignments__tag__group=group)
            .values_list("pk", flat=True)
            .distinct()
        )
    else:
        expression = segments.validate(segment.expression, actor)
        tags = list(Tag.objects.filter(pk__in=segments.tag_ids(expression)))
        population_ids = segments.customer_ids(expression, actor)
    if not tags:
        raise TaggingError(_("There are no tags to check."))
    chosen = draw_sample(population_ids, percent, seed)
    if not chosen:
        raise TaggingError(_("No customer in your scope carries these tags: nothing to sample."))
    check = AccuracyCheck.objects.create(
        name=name,
        group=group,
        segment=segment,
        percent=percent,
        seed=seed,
        population=len(set(population_ids)),
        created_by=actor,
    )
    check.tags.set(tags)
    AccuracyCheckItem.objects.bulk_create(
        AccuracyCheckItem(check_run=check, customer_id=pk, position=i)
        for i, pk in enumerate(chosen, 1)
    )
    AuditEntry.objects.create(
        action=AuditAction.ACCURACY_STARTED,
        actor_id=actor.pk,
        source=AssignmentSource.MANUAL,
        group=group,
        object_repr=name[:255],
        after={
            "check": check.pk,
            "percent": str(percent),
            "seed": seed,
            "population": check.population,
            "sample": len(chosen),
        },
    )
    return check


@dataclass
class ReviewResult:
    marks: int = 0
    removed: int = 0
    added: int = 0
    not_fixed: list[str] | None = None


@transaction.atomic
def record_review(
    item: AccuracyCheckItem, verdicts: dict[int, str], *, actor: Any, apply_fixes: bool
) -> ReviewResult:
    """Store the reviewer's verdicts ({tag id: correct | wrong | missing}) on one sampled
    customer, replacing earlier ones. "wrong" needs the customer to carry the tag and "missing"
    to lack it. With ``apply_fixes``, wrong tags are removed and missing ones added through the
    assignment service (as the reviewer, source manual; the service's refusals apply; auto tags
    are never fixed by hand and are reported instead). Audited."""
    check = item.check_run
    judged = {t.pk: t for t in check.tags.select_related("group")}
    unknown = [t for t in verdicts if t not in judged]
    if unknown:
        raise TaggingError(_("These tags are not part of this check: %(ids)s.") % {"ids": unknown})
    valid = {choice for choice, _label in AccuracyMark.Verdict.choices}
    if any(v not in valid for v in verdicts.values()):
        raise TaggingError(_("A verdict is correct, wrong or missing."))
    held = set(
        TagAssignment.objects.filter(customer_id=item.customer_id, tag_id__in=judged).values_list(
            "tag_id", flat=True
        )
    )
    for tag_id, verdict in verdicts.items():
        has = tag_id in held
        if verdict == AccuracyMark.Verdict.MISSING and has:
            raise TaggingError(
                _("“%(tag)s” cannot be missing: the customer has it.") % {"tag": judged[tag_id]}
            )
        if verdict != AccuracyMark.Verdict.MISSING and not has:
            raise TaggingError(
                _("“%(tag)s” can only be missing: the customer does not have it.")
                % {"tag": judged[tag_id]}
            )
    result = ReviewResult(marks=len(verdicts), not_fixed=[])
    fix_remove = [t for t, v in verdicts.items() if v == AccuracyMark.Verdict.WRONG]
    fix_add = [t for t, v in verdicts.items() if v == AccuracyMark.Verdict.MISSING]
    fixed: set[int] = set()
    if apply_fixes and (fix_remove or fix_add):
        manual = [t for t in fix_remove + fix_add if judged[t].group.kind != TagKind.AUTO]
        result.not_fixed = [str(judged[t]) for t in fix_remove + fix_add if t not in manual]
        if manual:
            policy.require_customers(actor, [item.customer_id], policy.Level.EDIT)
            policy.require_tags(actor, manual, policy.Level.EDIT)
        reason = _("accuracy check “%(name)s”") % {"name": check.name}
        remove = [judged[t] for t in fix_remove if t in manual]
        add = [judged[t] for t in fix_add if t in manual]
        result.removed = len(
            unassign_tags(
                [item.customer_id], remove, actor=actor, source="manual", reason=reason
            ).removed
        )
        result.added = len(
            assign_tags([item.customer_id], add, actor=actor, source="manual", reason=reason).added
        )
        fixed = {t.pk for t in remove + add}
    AccuracyMark.objects.filter(item=item).delete()
    AccuracyMark.objects.bulk_create(
        AccuracyMark(item=item, tag_id=t, verdict=v, fixed=t in fixed) for t, v in verdicts.items()
    )
    item.reviewed_by = actor
    item.reviewed_at = timezone.now()
    item.save(update_fields=["reviewed_by", "reviewed_at"])
    AuditEntry.objects.create(
        action=AuditAction.ACCURACY_REVIEWED,
        actor_id=actor.pk,
        source=AssignmentSource.MANUAL,
        customer_id=item.customer_id,
        group_id=check.group_id,
        object_repr=check.name[:255],
        after={"check": check.pk, "verdicts": {str(t): v for t, v in verdicts.items()}},
    )
    return result


def wilson_interval(errors: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of an error rate (95 % by default); (0, 0) without data."""
    if total <= 0:
        return 0.0, 0.0
    p = errors / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def check_report(check: AccuracyCheck) -> dict:
    """Per judged tag: correct, wrong, missing, error rate = (wrong + missing) / all three, and
    its 95 % Wilson interval; plus how many sampled customers are reviewed. Two queries."""
    counts: dict[tuple[int, str], int] = {}
    fixed: dict[int, int] = {}
    for tag_id, verdict, was_fixed in AccuracyMark.objects.filter(
        item__check_run=check
    ).values_list("tag_id", "verdict", "fixed"):
        counts[(tag_id, verdict)] = counts.get((tag_id, verdict), 0) + 1
        if was_fixed:
            fixed[tag_id] = fixed.get(tag_id, 0) + 1
    rows = []
    for tag in check.tags.select_related("group").order_by("sort_order", "pk"):
        correct = counts.get((tag.pk, AccuracyMark.Verdict.CORRECT), 0)
        wrong = counts.get((tag.pk, AccuracyMark.Verdict.WRONG), 0)
        missing = counts.get((tag.pk, AccuracyMark.Verdict.MISSING), 0)
        total = correct + wrong + missing
        low, high = wilson_interval(wrong + missing, total)
        rows.append(
            {
                "tag": tag,
                "correct": correct,
                "wrong": wrong,
                "missing": missing,
                "judged": total,
                "error_rate": (wrong + missing) / total if total else None,
                "low": low,
                "high": high,
                "fixed": fixed.get(tag.pk, 0),
            }
        )
    items = check.items.all()
    return {
        "rows": rows,
        "sampled": items.count(),
        "reviewed": items.filter(reviewed_at__isnull=False).count(),
    }
