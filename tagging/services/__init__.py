"""The only way tag assignments and the taxonomy change (docs/taxonomy.md).

Every function here is atomic and writes the audit log. Department permissions are checked by
the entry points through ``permissions.policy`` before calling; these services enforce the rules
that hold whoever calls: kinds (auto tags only by their rule, personal tags only by their
owner), tag status, limits from settings, exclusive groups and name rules.

Assignment functions take many customers x many tags and run a constant number of queries
(the customers' rows are locked first, so concurrent batches on the same customers serialise
and limits and exclusivity stay true).
"""

from tagging.services.assignments import (
    assign_tags,
    assignable_error,
    bulk_assign,
    change_tags,
    check_expiry,
    remove_expired_assignments,
    unassign_tags,
)
from tagging.services.common import AssignResult, UnassignResult, check_rule_tag
from tagging.services.reviews import (
    archive_personal_tag,
    keep_personal_tag,
    list_stale_personal_tags,
)
from tagging.services.taxonomy import (
    approve_tag,
    archive_tag,
    create_group,
    create_tag,
    delete_group,
    delete_tag,
    merge_tags,
    reject_tag,
    reorder_groups,
    reorder_tags,
    restore_tag,
    update_group,
    update_tag,
)

__all__ = [
    "AssignResult",
    "UnassignResult",
    "approve_tag",
    "archive_personal_tag",
    "archive_tag",
    "assign_tags",
    "assignable_error",
    "bulk_assign",
    "change_tags",
    "check_expiry",
    "check_rule_tag",
    "create_group",
    "create_tag",
    "delete_group",
    "delete_tag",
    "keep_personal_tag",
    "list_stale_personal_tags",
    "merge_tags",
    "reject_tag",
    "remove_expired_assignments",
    "reorder_groups",
    "reorder_tags",
    "restore_tag",
    "unassign_tags",
    "update_group",
    "update_tag",
]
