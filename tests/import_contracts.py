"""An import-linter contract type that import-linter lacks: no import cycle between any two
modules, across packages (pyproject.toml ``[tool.importlinter]``, contract "acyclic_modules").

The built-in ``acyclic_siblings`` contract looks for cycles between the children of one
package; TagDesk's apps are separate top-level packages, so a cycle such as
``tagging.models -> permissions.policy -> tagging.models`` has no common parent for it to look
in. This contract takes the graph import-linter built (function-level and TYPE_CHECKING imports
included) and reports every strongly connected component of the module graph.
"""

from __future__ import annotations

from typing import Any

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck
from importlinter.domain.helpers import module_expressions_to_modules
from importlinter.domain.imports import ModuleExpression


def import_cycles(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """The strongly connected components of more than one module among ``modules`` (sorted),
    i.e. every set of modules that import each other directly or indirectly. Iterative Tarjan,
    so deep graphs don't hit the recursion limit."""
    adjacency = {
        m: sorted(graph.find_modules_directly_imported_by(m) & modules) for m in sorted(modules)
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in adjacency:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, position = work.pop()
            if position == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            children = adjacency[node]
            for i in range(position, len(children)):
                child = children[i]
                if child not in index:
                    work.append((node, i + 1))
                    work.append((child, 0))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
    return sorted(components)


class AcyclicModulesContract(Contract):
    """Options: ``modules`` (module expressions; their descendants are included)."""

    type_name = "acyclic_modules"

    modules = fields.ListField(subfield=fields.ModuleExpressionField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        # Contract fields are declared as Field objects; once parsed they hold the values.
        expressions: list[ModuleExpression] = self.modules  # type: ignore[assignment]
        roots = module_expressions_to_modules(graph, expressions, raise_if_unmatched=True)
        checked: set[str] = set()
        for root in roots:
            checked.add(root.name)
            checked |= graph.find_descendants(root.name)
        cycles = []
        for component in import_cycles(graph, checked):
            members = set(component)
            edges = [
                (importer, imported, graph.get_import_details(importer=importer, imported=imported))
                for importer in component
                for imported in sorted(graph.find_modules_directly_imported_by(importer) & members)
            ]
            cycles.append({"modules": component, "edges": edges})
        return ContractCheck(kept=not cycles, warnings=[], metadata={"cycles": cycles})

    def render_broken_contract(self, check: ContractCheck) -> None:
        cycles: list[dict[str, Any]] = check.metadata["cycles"]
        for cycle in cycles:
            output.print_error(f"Import cycle between {', '.join(cycle['modules'])}:")
            output.new_line()
            for importer, imported, details in cycle["edges"]:
                lines = ", ".join(str(d["line_number"]) for d in details) or "?"
                output.indent_cursor()
                output.print_error(f"{importer} -> {imported} (l. {lines})", bold=False)
            output.new_line()
