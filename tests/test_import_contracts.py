"""The import contracts (pyproject.toml [tool.importlinter], run by ``lint-imports`` in
scripts/test.sh): the cycle contract sees imports inside functions, across top-level packages."""

from __future__ import annotations

import textwrap

import grimp
import pytest
from importlinter.domain.contract import ContractCheck

from tests.import_contracts import AcyclicModulesContract, import_cycles


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """Two top-level packages: low.models imports high.policy lazily (inside a method), and
    high.policy imports low.models at the top; plus an acyclic chain."""
    files = {
        "lowpkg/__init__.py": "",
        "lowpkg/models.py": """
            class Thing:
                def visible_to(self, user):
                    from highpkg import policy

                    return policy.visible(user)
        """,
        "lowpkg/names.py": "X = 1\n",
        "highpkg/__init__.py": "",
        "highpkg/policy.py": """
            from lowpkg.models import Thing
            from lowpkg.names import X
        """,
        "highpkg/services.py": "from highpkg import policy\n",
    }
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    return grimp.build_graph("lowpkg", "highpkg", cache_dir=None)


def test_a_lazy_import_across_packages_is_a_cycle(packages):
    modules = packages.modules
    assert import_cycles(packages, modules) == [["highpkg.policy", "lowpkg.models"]]


def test_the_contract_reports_the_cycle_with_line_numbers(packages):
    contract = AcyclicModulesContract(
        name="no cycles",
        session_options={"root_packages": ["lowpkg", "highpkg"]},
        contract_options={"modules": ["lowpkg", "highpkg"]},
    )
    check = contract.check(packages, verbose=False)
    assert isinstance(check, ContractCheck) and not check.kept
    (cycle,) = check.metadata["cycles"]
    assert cycle["modules"] == ["highpkg.policy", "lowpkg.models"]
    lines = {(a, b): [d["line_number"] for d in details] for a, b, details in cycle["edges"]}
    assert lines == {
        ("highpkg.policy", "lowpkg.models"): [2],
        ("lowpkg.models", "highpkg.policy"): [4],
    }


def test_without_the_lazy_import_the_contract_is_kept(packages):
    packages.remove_import(importer="lowpkg.models", imported="highpkg.policy")
    contract = AcyclicModulesContract(
        name="no cycles",
        session_options={"root_packages": ["lowpkg", "highpkg"]},
        contract_options={"modules": ["lowpkg", "highpkg"]},
    )
    assert contract.check(packages, verbose=False).kept
    assert import_cycles(packages, packages.modules) == []
