"""Previewing and applying rules (docs/rules.md#runs).

``apply_rule`` evaluates a rule once, set-based: the matching customers go into a keyed temporary
table (one query: the compiled tree), the diff against the rule's current assignments into two
more keyed tables, and the writes are a handful of ``INSERT ... SELECT`` / ``DELETE ... WHERE
customer_id IN (...)`` statements that also write the audit log from the same tables — no loop
over customers, whatever their number. Only assignments the rule itself made are removed.

``run_rule`` wraps it for entry points (admin "run now", the nightly task, ``run_rules``): it
claims the rule by inserting its ``running`` RuleRun (a partial unique constraint refuses a
second one, so runs of one rule never overlap) and records counts, timings and errors.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from rules import diff, dirty, dsl
from rules.diff import PG_WORK_MEM, Outcome, prepare_connection
from rules.models import Rule, RuleMode, RuleRun, RunStatus, check_references
from tagging import hooks
from tagging.models import AssignmentSource, AuditAction, Tag, TagGroup, TagStatus
from tagging.services import check_rule_tag

__all__ = [
    "PG_WORK_MEM",
    "Outcome",
    "RuleBusy",
    "RuleInvalid",
    "apply_rule",
    "check_batch_rule",
    "delete_rule",
    "dependency_order",
    "prepare_connection",
    "preview_tree",
    "rewrite_rules_for_merge",
    "run_rule",
    "expired_runs",
    "run_rules",
    "save_rule",
    "validate_rule",
]
logger = logging.getLogger(__name__)


class RuleInvalid(Exception):
    """The rule cannot run: its tree or target is invalid. Nothing was changed."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("; ".join(messages))


# --- validation -----------------------------------------------------------------------------


def validate_rule(
    tree: Any, *, tag: Tag | None, rule_id: int | None = None, version: int = 1
) -> dsl.Node:
    """Parse and check a rule for saving or running; raise :class:`RuleInvalid` listing every
    problem. Shared by ``Rule.clean`` (admin) and the entry points."""
    from tagging.models import TagKind

    messages: list[str] = []
    if tag is not None and tag.group.kind != TagKind.AUTO:
        messages.append(_("“%(tag)s” is not an auto tag.") % {"tag": tag})
    try:
        node = dsl.parse_tree(tree, version)
        check_references(node, tag_id=getattr(tag, "pk", None), rule_id=rule_id)
    except dsl.RuleSyntaxError as exc:
        raise RuleInvalid(messages + exc.messages()) from exc
    if messages:
        raise RuleInvalid(messages)
    return node


def preview_tree(
    tree: Any,
    *,
    tag: Tag | None,
    rule: Rule | None = None,
    now: dt.datetime | None = None,
    version: int = 1,
) -> Outcome:
    """Dry run of a (possibly unsaved) tree for ``tag``: counts and samples of the customers
    it matches, would add and would remove. Validates first (:class:`RuleInvalid`); writes
    nothing (everything happens in a transaction that is rolled back)."""
    rule_id = getattr(rule, "pk", None)
    node = validate_rule(tree, tag=tag, rule_id=rule_id, version=version)
    now = now or timezone.now()
    timings: dict[str, float] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        tables = diff.setup(cursor)
        outcome = diff.evaluate(
            cursor,
            tables,
            node,
            tag_id=getattr(tag, "pk", 0),
            rule_id=rule_id if tag is not None else None,
            now=now,
            timings=timings,
            samples=True,
        )
        if tag is None:  # no target yet: everyone matched would be added
            outcome.added = outcome.matched
        tables.drop()
        transaction.set_rollback(True)
    outcome.because = _explain_samples(tree, version, now, outcome.samples)
    outcome.dry_run = True
    outcome.timings = timings
    return outcome


def _explain_samples(
    tree: Any, version: int, now: dt.datetime, samples: dict[str, list[dict[str, Any]]]
) -> dict[int, list[dict[str, Any]]]:
    """Why each sample gains or loses the tag: ``{customer_id: leaves}``, the leaves pushing
    towards its new verdict, from one explain query for all samples."""
    from rules.explain import deciding_leaves, explain_many

    ids = [s["id"] for s in (*samples.get("to_add", []), *samples.get("to_remove", []))]
    if not ids:
        return {}
    explained = explain_many(tree, ids, version=version, now=now)
    return {pk: deciding_leaves(e) for pk, e in explained.items()}


@transaction.atomic
def apply_rule(
    rule: Rule,
    *,
    dry_run: bool = False,
    now: dt.datetime | None = None,
    customer_ids: list[int] | None = None,
    node: dsl.Node | None = None,
) -> Outcome:
    """Evaluate ``rule`` now: customers newly matching get its tag, customers no longer matching
    lose it (only assignments this rule made). Source ``rule``; each added/removed pair is
    audited. Atomic; raises :class:`RuleInvalid` (nothing written) for an invalid rule or a tag
    the rule may not use. ``dry_run`` computes the same diff and writes nothing.

    ``customer_ids`` restricts the evaluation to those customers (the real-time path,
    ``rules.realtime``, which passes the ``node`` it parsed and checked when it loaded the
    rules). A writing evaluation locks the rule's row, so the nightly run and real-time batches
    of one rule take turns and never insert the same assignment twice."""
    started = time.perf_counter()
    rules = Rule.objects.select_related("tag__group")
    if not dry_run:
        rules = rules.select_for_update(of=("self",))
    rule = rules.get(pk=rule.pk)
    tag = rule.tag
    if node is None:
        node = validate_rule(rule.tree, tag=tag, rule_id=rule.pk, version=rule.tree_version)
    now = now or timezone.now()
    timings: dict[str, float] = {}
    fast = connection.vendor == "postgresql" and not dry_run and tag.status == TagStatus.ACTIVE
    mark_keys = [] if dry_run else _mark_keys(tag, realtime=customer_ids is not None)
    with connection.cursor() as cursor:
        tables = diff.setup(cursor, tables=not fast)
        if not dry_run and tag.group.exclusive:
            # Rules of one exclusive group write one at a time, so exclusivity holds.
            list(TagGroup.objects.select_for_update().filter(pk=tag.group_id).values("pk"))
        if fast:
            _check(tag, rule, adding=True)
            outcome = diff.evaluate_and_write_pg(
                cursor,
                node,
                tag=tag,
                rule=rule,
                now=now,
                timings=timings,
                customer_ids=customer_ids,
                mark_keys=mark_keys,
                mark_upsert=dirty.upsert_clause(),
            )
            if outcome.marked:
                transaction.on_commit(dirty.schedule)
        else:
            outcome = diff.evaluate(
                cursor,
                tables,
                node,
                tag_id=tag.pk,
                rule_id=rule.pk,
                now=now,
                timings=timings,
                samples=dry_run,
                customer_ids=customer_ids,
            )
            if not dry_run and (outcome.added or outcome.removed):
                _check(tag, rule, adding=bool(outcome.added))
                write_started = time.perf_counter()
                diff.write(cursor, tag, rule, now, outcome)
                timings["write"] = round(time.perf_counter() - write_started, 4)
                if mark_keys:
                    outcome.marked = _mark_changed(cursor, tag, mark_keys)
            tables.drop()
        outcome.dry_run = dry_run
    if not dry_run:
        tell_written(tag, outcome, customer_ids)
    timings["total"] = round(time.perf_counter() - started, 4)
    outcome.timings = timings
    return outcome


def written_tags(tag: Tag, outcome: Outcome) -> list[int]:
    """The tags whose assignments an evaluation of a rule on ``tag`` changed: none, the tag, or
    with an exclusive group's replaced tags every tag of its group."""
    if not (outcome.added or outcome.removed or outcome.replaced):
        return []
    if outcome.replaced:
        return [
            tag.pk,
            *Tag.objects.filter(group_id=tag.group_id)
            .exclude(pk=tag.pk)
            .values_list("pk", flat=True),
        ]
    return [tag.pk]


def tell_written(tag: Tag, outcome: Outcome, customer_ids: list[int] | None) -> None:
    """Inside the evaluation's transaction: tell ``tagging.hooks`` which tags it wrote, for which
    customers (the WeCom sync queues the relationships whose rule-group tags now differ)."""
    tags = written_tags(tag, outcome)
    if tags:
        hooks.rule_assignments_written(tags, customer_ids)


def _mark_keys(tag: Tag, *, realtime: bool) -> list[str]:
    """The ``tag:<id>`` keys an evaluation writing ``tag`` must mark for the real-time rules
    reading them: its own tag (except on the real-time path, which evaluates the rules reading
    it in the same batch) and, in an exclusive group, the group's tags it may replace."""
    if not any(key.startswith("tag:") for key in dirty.index_keys()):
        return []  # no real-time rule reads a tag: no query (one per rule and batch else)
    tag_ids = {tag.pk}
    if tag.group.exclusive:
        tag_ids |= set(Tag.objects.filter(group_id=tag.group_id).values_list("pk", flat=True))
    if realtime:
        tag_ids.discard(tag.pk)
    return dirty.wanted_tag_keys(tag_ids) if tag_ids else []


def _mark_changed(cursor: Any, tag: Tag, mark_keys: list[str]) -> int:
    """The portable path: mark the customers of the diff tables (added ones also for the
    group's tags an exclusive group may have replaced: a spare mark costs one evaluation)."""
    own = f"tag:{tag.pk}"
    keys: dict[int, set[str]] = {}
    cursor.execute("SELECT customer_id FROM rules_remove")
    for (pk,) in cursor.fetchall():
        keys.setdefault(pk, set()).add(own)
    cursor.execute("SELECT customer_id FROM rules_add")
    for (pk,) in cursor.fetchall():
        keys.setdefault(pk, set()).update(mark_keys)
    return dirty.mark(keys, wanted=mark_keys)


def check_batch_rule(rule: Rule) -> None:
    """The check ``apply_rule`` makes before its one-statement path, for a real-time batch that
    evaluates the rule in its own statement (``rules.realtime``): raise :class:`RuleInvalid`
    unless the rule may add its tag. A tag that is not active is left to ``apply_rule``."""
    if rule.tag.status == TagStatus.ACTIVE:
        _check(rule.tag, rule, adding=True)


def _check(tag: Tag, rule: Rule, *, adding: bool) -> None:
    try:
        check_rule_tag(tag, rule=rule, adding=adding)
    except Exception as exc:
        raise RuleInvalid([str(exc)]) from exc


# --- runs -------------------------------------------------------------------------------------


class RuleBusy(Exception):
    """Another run of the same rule is in progress; this one was skipped."""


def lease_expiry(now: dt.datetime | None = None) -> dt.datetime:
    return (now or timezone.now()) + dt.timedelta(seconds=settings.TAGDESK_JOB_LEASE_SECONDS)


def expired_runs(now: dt.datetime | None = None) -> QuerySet[RuleRun]:
    """``running`` rows whose worker stopped renewing their lease (rows from before leases
    existed count from their start)."""
    now = now or timezone.now()
    lease = dt.timedelta(seconds=settings.TAGDESK_JOB_LEASE_SECONDS)
    return RuleRun.objects.filter(status=RunStatus.RUNNING).filter(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, started_at__lt=now - lease)
    )


class _Heartbeat:
    """Renews a run's lease from a thread (its own database connection) while the evaluation,
    one long transaction, runs. Started only outside an enclosing transaction: inside one (a
    test, a caller's atomic block) the run row is not committed, so no other connection sees it,
    and nothing can reap it either."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.stopped = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> _Heartbeat:
        if not connection.in_atomic_block:
            self.thread = threading.Thread(target=self._beat, daemon=True, name="rule-heartbeat")
            self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def _beat(self) -> None:
        interval = max(settings.TAGDESK_JOB_LEASE_SECONDS / 3, 0.2)
        try:
            while not self.stopped.wait(interval):
                RuleRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(
                    lease_expires_at=lease_expiry()
                )
        except Exception:  # a lost heartbeat only means the run may be reaped and run again
            logger.exception("heartbeat of rule run %s stopped", self.run_id)
        finally:
            connections.close_all()  # this thread's connections


def run_rule(
    rule: Rule | int,
    *,
    trigger: str,
    dry_run: bool = False,
    actor: Any = None,
    now: dt.datetime | None = None,
    task_id: str = "",
    attempt: int = 1,
) -> RuleRun:
    """Run one rule and record it. Claims the rule first (one ``running`` RuleRun per rule, with
    a lease its heartbeat renews); a run that finds the rule claimed by a live run is recorded as
    ``skipped`` and changes nothing, one whose lease expired is failed first (worker lost).
    Invalid rules end ``rejected``. Unexpected errors end ``failed`` and are re-raised (tasks
    retry)."""
    rule_id = rule.pk if isinstance(rule, Rule) else rule
    rule = Rule.objects.select_related("tag__group").get(pk=rule_id)
    started_at = timezone.now()
    expired_runs(started_at).filter(rule=rule).update(
        status=RunStatus.FAILED,
        finished_at=started_at,
        lease_expires_at=None,
        error=_("Worker lost (its lease expired)."),
    )
    fields = {
        "rule": rule,
        "trigger": trigger,
        "dry_run": dry_run,
        "triggered_by": actor,
        "started_at": started_at,
        "task_id": task_id[:64],
        "attempt": attempt,
    }
    try:
        with transaction.atomic():
            run = RuleRun.objects.create(
                status=RunStatus.RUNNING, lease_expires_at=lease_expiry(started_at), **fields
            )
    except IntegrityError:
        return RuleRun.objects.create(
            status=RunStatus.SKIPPED,
            finished_at=timezone.now(),
            error=_("Another run of this rule is in progress."),
            **fields,
        )
    try:
        with _Heartbeat(run.pk):
            outcome = apply_rule(rule, dry_run=dry_run, now=now)
    except RuleInvalid as exc:
        _finish(run, RunStatus.REJECTED, error=str(exc))
    except Exception as exc:
        _finish(run, RunStatus.FAILED, error=f"{type(exc).__name__}: {exc}")
        raise
    else:
        _finish(run, RunStatus.SUCCEEDED, outcome=outcome)
    return run


def _finish(run: RuleRun, status: str, *, outcome: Outcome | None = None, error: str = "") -> None:
    run.status = status
    run.finished_at = timezone.now()
    run.error = error
    run.lease_expires_at = None
    if outcome is not None:
        run.matched, run.added, run.removed = outcome.matched, outcome.added, outcome.removed
        run.timings = outcome.timings
        if run.rule.mode == RuleMode.REALTIME and not run.dry_run:
            run.missed = outcome.missed
    fields = [
        "status",
        "finished_at",
        "error",
        "matched",
        "added",
        "removed",
        "missed",
        "timings",
    ]
    # Conditional: a run the reaper already failed (its worker was presumed lost) stays failed;
    # its rule was queued again and that run reports the outcome.
    RuleRun.objects.filter(pk=run.pk, status=RunStatus.RUNNING).update(
        lease_expires_at=None, **{name: getattr(run, name) for name in fields}
    )


def dependency_order(rules: Iterable[Rule]) -> list[Rule]:
    """Rules whose tags other rules read run first (rules may build on tags; no cycles exist)."""
    rules = list(rules)
    by_tag = {r.tag_id: r for r in rules}
    needs: dict[int, set[int]] = {}
    for r in rules:
        try:
            refs = dsl.referenced_tags(dsl.parse_tree(r.tree, r.tree_version))
        except dsl.RuleSyntaxError:
            refs = set()
        needs[r.pk] = {by_tag[t].pk for t in refs if t in by_tag and by_tag[t].pk != r.pk}
    ordered: list[Rule] = []
    done: set[int] = set()

    def visit(r: Rule, trail: frozenset[int] = frozenset()) -> None:
        if r.pk in done or r.pk in trail:
            return
        for dep in sorted(needs[r.pk]):
            visit(next(x for x in rules if x.pk == dep), trail | {r.pk})
        done.add(r.pk)
        ordered.append(r)

    for r in sorted(rules, key=lambda x: x.pk):
        visit(r)
    return ordered


def run_rules(
    rule_ids: Iterable[int] | None = None,
    *,
    trigger: str,
    dry_run: bool = False,
    actor: Any = None,
    now: dt.datetime | None = None,
    task_id: str = "",
) -> list[RuleRun]:
    """Run the given rules (default: every enabled rule) in dependency order, each recorded.
    One failing rule does not stop the others; its run ends ``failed``. With a ``task_id``, a
    rule this task already ran to an outcome is not run again: the message delivered again after
    a lost worker resumes the nightly run where it stopped."""
    queryset = Rule.objects.select_related("tag__group")
    queryset = (
        queryset.filter(pk__in=list(rule_ids))
        if rule_ids is not None
        else queryset.filter(enabled=True)
    )
    done: dict[int, RuleRun] = {}
    if task_id:
        for run in RuleRun.objects.filter(
            task_id=task_id[:64], status__in=[RunStatus.SUCCEEDED, RunStatus.REJECTED]
        ):
            done.setdefault(run.rule_id, run)
    runs: list[RuleRun] = []
    for rule in dependency_order(queryset):
        if rule.pk in done:
            runs.append(done[rule.pk])
            continue
        try:
            runs.append(
                run_rule(
                    rule, trigger=trigger, dry_run=dry_run, actor=actor, now=now, task_id=task_id
                )
            )
        except Exception:  # recorded as failed by run_rule
            failed = RuleRun.objects.filter(rule=rule).order_by("-started_at", "-id").first()
            if failed is not None:
                runs.append(failed)
    return runs


# --- rule lifecycle (admin, API, templates, demo) -----------------------------------------------


def _rule_snapshot(rule: Rule) -> dict[str, Any]:
    return {
        "name": rule.name,
        "tag": rule.tag_id,
        "tree": rule.tree,
        "tree_version": rule.tree_version,
        "enabled": rule.enabled,
        "mode": rule.mode,
        "description": rule.description,
    }


def _audit_rule(
    rule: Rule,
    action: str,
    *,
    actor: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> None:
    from tagging.models import AuditEntry

    AuditEntry.objects.create(
        action=action,
        actor_id=getattr(actor, "pk", None),
        source=AssignmentSource.MANUAL,
        rule_id=rule.pk,
        tag_id=rule.tag_id,
        object_repr=str(rule)[:255],
        before=before,
        after=after,
        reason=reason[:255],
    )


@transaction.atomic
def save_rule(rule: Rule, *, actor: Any) -> Rule:
    """Create or update ``rule`` after full validation (``ValidationError`` otherwise); audited
    as rule.created / rule.updated with before and after. Takes effect at the next run."""
    rule.full_clean()
    if rule.pk is None:
        rule.created_by = rule.created_by or (actor if getattr(actor, "pk", None) else None)
        rule.save()
        _audit_rule(rule, AuditAction.RULE_CREATED, actor=actor, after=_rule_snapshot(rule))
        return rule
    before = _rule_snapshot(Rule.objects.get(pk=rule.pk))
    rule.save()
    after = _rule_snapshot(rule)
    if before != after:
        _audit_rule(rule, AuditAction.RULE_UPDATED, actor=actor, before=before, after=after)
    return rule


@transaction.atomic
def delete_rule(rule: Rule, *, actor: Any) -> int:
    """Delete ``rule`` and the assignments it made (each removal audited): nothing else may
    remove an auto tag, so leaving them would strand them. Returns the number removed."""
    from tagging.models import AuditEntry, TagAssignment

    rows = list(
        TagAssignment.objects.filter(rule=rule, tag_id=rule.tag_id).values_list("pk", "customer_id")
    )
    now = timezone.now()
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                created_at=now,
                actor_id=getattr(actor, "pk", None),
                action=AuditAction.ASSIGNMENT_REMOVED,
                source=AssignmentSource.RULE,
                customer_id=customer_id,
                tag_id=rule.tag_id,
                group_id=rule.tag.group_id,
                rule_id=rule.pk,
                object_repr=str(rule.tag)[:255],
                reason=_("rule deleted"),
            )
            for _pk, customer_id in rows
        ],
        batch_size=5000,
    )
    TagAssignment.objects.filter(pk__in=[pk for pk, _c in rows]).delete()
    dirty.mark({customer_id: {f"tag:{rule.tag_id}"} for _pk, customer_id in rows})
    if rows:  # every customer (None): a set-based comparison, not the ids as parameters
        hooks.rule_assignments_written([rule.tag_id], None)
    _audit_rule(rule, AuditAction.RULE_DELETED, actor=actor, before=_rule_snapshot(rule))
    rule.delete()
    return len(rows)


def _replace_tag_refs(tree: Any, mapping: dict[int, int]) -> Any:
    if isinstance(tree, dict):
        out = {k: _replace_tag_refs(v, mapping) for k, v in tree.items()}
        if "tag" in tree and isinstance(tree["tag"], int) and tree["tag"] in mapping:
            out["tag"] = mapping[tree["tag"]]
        return out
    if isinstance(tree, list):
        return [_replace_tag_refs(v, mapping) for v in tree]
    return tree


def rewrite_rules_for_merge(source_ids: Iterable[int], target_id: int) -> int:
    """Registered in ``tagging.hooks`` (``RulesConfig.ready``), so ``merge_tags`` runs it
    inside the merge's transaction: rules that read a merged tag ("has tag A") read
    the target from now on. Audited as rule.updated. Returns the number of rules changed."""
    mapping = {int(s): int(target_id) for s in source_ids}
    changed = 0
    for rule in Rule.objects.select_related("tag__group"):
        try:
            refs = dsl.referenced_tags(dsl.parse_tree(rule.tree, rule.tree_version))
        except dsl.RuleSyntaxError:
            continue
        if not refs & set(mapping):
            continue
        before = _rule_snapshot(rule)
        rule.tree = _replace_tag_refs(rule.tree, mapping)
        rule.save(update_fields=["tree", "updated_at"])
        _audit_rule(
            rule,
            AuditAction.RULE_UPDATED,
            actor=None,
            before=before,
            after=_rule_snapshot(rule),
            reason=_("tags merged"),
        )
        changed += 1
    return changed
