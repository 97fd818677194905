"""What an import reports (docs/import-export.md#import_customers): row errors, the ``--json``
summary and the admin's rejected rows. Built by ``customers.importing``, read by the entry points
(command, admin, tasks, resources); re-exported by ``customers.importing``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class RowError:
    line: int | None
    column: str | None
    code: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "column": self.column,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class ImportReport:
    """The import_customers --json summary (docs/import-export.md#import_customers) plus what the
    admin shows (rejected rows, header)."""

    rows: int = 0
    valid: int = 0
    invalid: int = 0
    customers_created: int = 0
    customers_updated: int = 0
    assignments_added: int = 0
    errors: list[RowError] = field(default_factory=list)
    rejected: list[tuple[int, list[str], str]] = field(default_factory=list)  # line, values, reason
    header: list[str] = field(default_factory=list)
    applied: bool = False
    dry_run: bool = False
    file_error: bool = False

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "valid": self.valid,
            "invalid": self.invalid,
            "customers_created": self.customers_created,
            "customers_updated": self.customers_updated,
            "assignments_added": self.assignments_added,
            "errors": [e.as_dict() for e in self.errors],
        }

    @property
    def rejected_work(self) -> bool:
        """True when the import was refused as a whole (command exit status non-zero)."""
        if self.file_error:
            return True
        # strict with errors, or lenient with no good row: nothing was applied
        return bool(self.errors) and not self.dry_run and (not self.applied or self.valid == 0)

    def merge(self, other: ImportReport) -> None:
        for key in ("rows", "valid", "invalid", "customers_created", "customers_updated"):
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.assignments_added += other.assignments_added
        self.errors.extend(other.errors)
        self.rejected.extend(other.rejected)


class HeaderError(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        super().__init__(errors[0].message)
        self.errors = errors


def file_error_report(exc: Exception, code: str) -> ImportReport:
    report = ImportReport(file_error=True)
    report.errors.append(RowError(None, None, code, str(exc)))
    return report
