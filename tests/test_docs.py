"""docs/ stays true to the code: every import error code, service error code, rule node, field,
operator and API path is documented; every rule example validates; every docs/ pointer resolves.

Each failure names what is missing and the page to add it to, so whoever adds an error code,
a rule field or an endpoint learns here what to document.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import pkgutil
import re
import unicodedata
from functools import cache
from pathlib import Path

import pytest
from django.conf import settings

from rules import dsl
from rules import fields as F

ROOT = Path(settings.BASE_DIR)
DOCS = ROOT / "docs"
PROJECT_PACKAGES = ("api", "config", "customers", "demo", "permissions", "rules", "tagging")
SKIP_DIRS = {".git", ".venv", "node_modules", "staticfiles", "var", "__pycache__", ".ruff_cache"}


@cache
def page(name: str) -> str:
    path = DOCS / name
    assert path.is_file(), f"docs/{name} is missing"
    return path.read_text(encoding="utf-8")


def all_docs() -> str:
    return "\n".join(page(p.name) for p in sorted(DOCS.glob("*.md")))


def missing_from(text: str, names, *, quoted: bool = True) -> list[str]:
    """Names not in ``text``; ``quoted``: written as `name` or "name" (so `in` is not found in
    every "into")."""
    if not quoted:
        return [n for n in names if n not in text]
    return [n for n in names if f"`{n}`" not in text and f'"{n}"' not in text]


# --- import error codes ---------------------------------------------------------------------


def _import_modules() -> list[Path]:
    """Modules that report import errors: those that build RowError / UnreadableFile."""
    found = []
    for path in sorted((ROOT / "customers").rglob("*.py")):
        if "migrations" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        if re.search(r"\b(RowError|UnreadableFile|file_error_report)\(", text):
            found.append(path)
    return found


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _reported_codes(tree: ast.AST) -> set[str]:
    """String literals used as an import error code: RowError(line, column, CODE, ...),
    UnreadableFile(message, CODE) / file_error_report(exc, CODE), any ``code=CODE`` keyword or
    ``code`` parameter default, the literals of ``code = ...``, and (CODE, _("message")) pairs."""
    codes: set[str] = set()

    def add(node):
        if (value := _literal(node)) is not None:
            codes.add(value)
        elif isinstance(node, ast.IfExp):
            add(node.body)
            add(node.orelse)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", getattr(node.func, "attr", ""))
            if name == "RowError" and len(node.args) >= 3:
                add(node.args[2])
            if name in ("UnreadableFile", "file_error_report") and len(node.args) >= 2:
                add(node.args[1])
            for keyword in node.keywords:
                if keyword.arg == "code":
                    add(keyword.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            args = node.args.args + node.args.kwonlyargs
            defaults: list[ast.expr | None] = [None] * (
                len(node.args.args) - len(node.args.defaults)
            )
            defaults += [*node.args.defaults, *node.args.kw_defaults]
            for arg, default in zip(args, defaults, strict=True):
                if arg.arg == "code" and default is not None:
                    add(default)
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == "code" for t in node.targets):
                for part in ast.walk(node.value):  # code = a.code if a.code == "x" else "y"
                    add(part)
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2:
            first, message = node.elts
            if isinstance(message, ast.BinOp):  # _("... %(x)s") % {...}
                message = message.left
            if isinstance(message, ast.Call) and getattr(message.func, "id", "") in (
                "_",
                "gettext",
                "gettext_lazy",
            ):
                add(first)
    return {c for c in codes if re.fullmatch(r"[a-z]+(_[a-z]+)+", c)}


def test_the_import_error_code_list_holds_every_code_the_importer_reports():
    from customers.importing import ERROR_CODES

    reported: dict[str, str] = {}
    for path in _import_modules():
        for code in _reported_codes(ast.parse(path.read_text(encoding="utf-8"))):
            reported.setdefault(code, str(path.relative_to(ROOT)))
    assert reported, "found no import error codes: has the importer moved?"
    unlisted = {c: where for c, where in reported.items() if c not in ERROR_CODES}
    assert not unlisted, (
        f"{unlisted}: reported by these modules but missing from customers.importing.ERROR_CODES; "
        "add them there and document them in docs/import-export.md#error-codes"
    )
    stale = [c for c in ERROR_CODES if c not in reported]
    assert not stale, (
        f"{stale} are in customers.importing.ERROR_CODES but no import module reports them"
    )
    assert len(set(ERROR_CODES)) == len(ERROR_CODES)


def test_every_import_error_code_is_documented_with_an_example():
    from customers.importing import ERROR_CODES

    text = page("import-export.md")
    section = text.split("## Error codes", 1)[-1].split("\n## ", 1)[0]
    missing = missing_from(section, ERROR_CODES)
    assert not missing, (
        f"import error codes {missing} are not in the '## Error codes' tables of "
        "docs/import-export.md: add a row with an example row, the column and the message"
    )


def test_every_command_json_key_is_documented():
    from customers.importing import ImportReport

    keys = list(ImportReport().summary())
    missing = missing_from(page("import-export.md"), keys)
    assert not missing, f"import_customers --json keys {missing} are not in docs/import-export.md"


# --- service error codes (the API's error codes) ----------------------------------------------


def _import_project_modules() -> None:
    """Import every project module, so every TaggingError subclass is defined."""
    for package in PROJECT_PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, prefix=f"{package}."):
            if ".migrations" in info.name or info.name in ("config.wsgi",):
                continue
            importlib.import_module(info.name)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_service_error_code_is_in_the_api_docs():
    from tagging.errors import TaggingError

    _import_project_modules()
    codes = {TaggingError.code: "tagging.errors.TaggingError"}
    for sub in _subclasses(TaggingError):
        codes.setdefault(sub.code, f"{sub.__module__}.{sub.__qualname__}")
    missing = {code: where for code, where in codes.items() if f"`{code}`" not in page("api.md")}
    assert not missing, (
        f"error codes {missing} can reach API clients but are not in docs/api.md#errors: add a row "
        "to the table (HTTP status, code, when)"
    )


# --- rules ----------------------------------------------------------------------------------------


def _rule_registry() -> dict[str, list[str]]:
    from rules.templates import TEMPLATES

    return {
        "condition node": [*dsl.GROUP_KEYS, *dsl.LEAF_KEYS, "at_least"],
        "attribute field": list(F.ATTRIBUTES),
        "operator": list(F.OPERATORS),
        "event kind": list(F.EVENT_KINDS),
        "aggregate": list(F.AGGREGATES),
        "measure": list(F.MEASURES),
        "event filter": list(F.EVENT_FILTERS),
        "RFM metric": list(F.RFM_METRICS),
        "template": list(TEMPLATES),
        "window": ["days", "from", "to"],
    }


def test_every_rule_node_field_operator_and_template_is_documented():
    text = page("rules.md")
    missing = {kind: names for kind, names in _rule_registry().items() if missing_from(text, names)}
    missing = {kind: missing_from(text, names) for kind, names in missing.items()}
    assert not missing, f"not documented in docs/rules.md (write each as `key`): {missing}"


def _marked_blocks(text: str, marker: str) -> list[tuple[int, str]]:
    """(line, body) of the ```json blocks that directly follow ``<!-- marker -->``."""
    pattern = re.compile(rf"<!--\s*{re.escape(marker)}\s*-->\s*\n```json\n(.*?)\n```", re.S)
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in pattern.finditer(text)]


def _rule_examples() -> list[tuple[str, int, str]]:
    return [
        (p.name, line, body)
        for p in sorted(DOCS.glob("*.md"))
        for line, body in _marked_blocks(page(p.name), "rule")
    ]


def test_the_rule_docs_carry_examples():
    examples = _rule_examples()
    assert len(examples) >= 30, examples
    used = json.dumps([json.loads(body) for _name, _line, body in examples])
    # every node type and every operator appears in at least one validated example
    unused = [k for k in (*dsl.GROUP_KEYS, *dsl.LEAF_KEYS, "at_least") if f'"{k}"' not in used]
    unused += [op for op in F.OPERATORS if f'"op": "{op}"' not in used]
    unused += [kind for kind in F.EVENT_KINDS if f'"event": "{kind}"' not in used]
    unused += [agg for agg in F.AGGREGATES if agg != "count" and f'"agg": "{agg}"' not in used]
    unused += [f for f in F.ATTRIBUTES if f'"attribute": "{f}"' not in used]
    assert not unused, f"no <!-- rule --> example in docs/ uses {unused}"


@pytest.mark.parametrize(
    ("name", "line", "body"),
    _rule_examples(),
    ids=[f"{name}:{line}" for name, line, _body in _rule_examples()],
)
def test_every_rule_example_is_a_valid_tree(name, line, body):
    try:
        tree = json.loads(body)
    except ValueError as exc:
        pytest.fail(f"docs/{name} line {line}: the rule example is not JSON: {exc}")
    try:
        dsl.parse_tree(tree)
    except dsl.RuleSyntaxError as exc:
        pytest.fail(f"docs/{name} line {line}: the rule example is invalid: {exc}")


def test_every_invalid_rule_example_is_refused():
    blocks = _marked_blocks(page("rules.md"), "invalid-rules")
    assert blocks, "docs/rules.md lost its <!-- invalid-rules --> block"
    for line, body in blocks:
        for offset, tree in enumerate(filter(None, body.splitlines()), 1):
            with pytest.raises(dsl.RuleSyntaxError):
                dsl.parse_tree(json.loads(tree))
                pytest.fail(f"docs/rules.md line {line + offset}: {tree} is valid, not invalid")


# --- API paths ------------------------------------------------------------------------------------


def _operations() -> list[str]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        for method in operations
        if method in ("get", "post", "put", "patch", "delete")
    ]


def _operation_sections() -> dict[str, str]:
    """docs/api.md's ``#### METHOD /path`` sections: heading -> text up to the next heading."""
    parts = re.split(r"^#### (.+)$", page("api.md"), flags=re.M)
    return {
        heading.strip(): body.split("\n#", 1)[0]
        for heading, body in zip(parts[1::2], parts[2::2], strict=True)
    }


def test_every_api_operation_is_documented_with_a_curl_example():
    operations = _operations()
    assert len(operations) > 20
    sections = _operation_sections()
    missing = [op for op in operations if op not in sections]
    assert not missing, (
        f"API operations {missing} are in the OpenAPI schema but not in docs/api.md: add a "
        "'#### METHOD /path' section under '## Endpoints' with what it does and a curl example"
    )
    without_curl = [op for op in operations if "curl " not in sections[op]]
    assert not without_curl, f"docs/api.md: give these sections a curl example: {without_curl}"
    stale = sorted(set(sections) - set(operations))
    assert not stale, f"docs/api.md documents operations the API does not have: {stale}"


# --- pointers into docs/ --------------------------------------------------------------------------


def slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    kept = [
        ch for ch in text if ch.isalnum() or ch in "-_ " or unicodedata.category(ch).startswith("M")
    ]
    return "".join(kept).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    in_code = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        if in_code or not re.match(r"#{1,6} ", line):
            continue
        base = slug(line.lstrip("#"))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def _project_files():
    for directory, subdirs, files in os.walk(ROOT):
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in files:
            if name.endswith((".py", ".html", ".txt", ".md", ".po", ".toml", ".sh")):
                yield Path(directory) / name


POINTER = re.compile(r"docs/([A-Za-z0-9_-]+\.md)(?:#([^\s)\]\"'`,;]+))?")
LINK = re.compile(r"\]\(((?:\.\./)?[A-Za-z0-9_.-]*\.md)?(?:#([^)\s]+))?\)")


def _check(target: Path, anchor: str | None, where: str, problems: list[str]) -> None:
    if not target.is_file():
        problems.append(f"{where}: {target.relative_to(ROOT)} does not exist")
        return
    anchor = (anchor or "").rstrip(".:")
    if anchor and anchor not in anchors(target):
        problems.append(f"{where}: no heading #{anchor} in {target.relative_to(ROOT)}")


def test_every_pointer_into_docs_resolves():
    problems: list[str] = []
    for path in _project_files():
        if path.parent == DOCS:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in POINTER.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            where = f"{path.relative_to(ROOT)}:{line}"
            _check(DOCS / match.group(1), match.group(2), where, problems)
    assert not problems, "\n".join(problems)


def test_every_link_between_the_docs_resolves():
    problems: list[str] = []
    for path in sorted(DOCS.glob("*.md")):
        text = page(path.name)
        for match in LINK.finditer(text):
            target_name, anchor = match.group(1), match.group(2)
            if target_name is None and anchor is None:
                continue
            target = (DOCS / target_name).resolve() if target_name else path
            line = text.count("\n", 0, match.start()) + 1
            _check(target, anchor, f"docs/{path.name}:{line}", problems)
    assert not problems, "\n".join(problems)


def test_no_spec_citations_are_left():
    """The product contract lives in docs/; code points there, not at a document outside."""
    citing = []
    for path in _project_files():
        if path.name == "test_docs.py":
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for match in re.finditer("SPEC \N{SECTION SIGN}", text):
            citing.append(f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, match.start()) + 1}")
    assert not citing, f"point these at docs/ instead: {citing}"


def test_the_docs_index_lists_every_page():
    index = page("README.md")
    unlisted = [p.name for p in DOCS.glob("*.md") if p.name != "README.md" and p.name not in index]
    assert not unlisted, f"docs/README.md does not list {unlisted}"


@pytest.mark.parametrize(
    "name",
    ["taxonomy.md", "import-export.md", "permissions.md", "rules.md", "api.md", "segments.md"],
)
def test_user_pages_have_a_chinese_section(name):
    assert "## 中文说明" in page(name)
