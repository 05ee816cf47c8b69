"""The structure docs/architecture.md describes: no import cycle anywhere under `openice/`.

`lint-imports` (scripts/test.sh) checks the layering contracts in pyproject.toml, which compare packages and
siblings; this test also catches a module that imports its own package's `__init__` and back, which no sibling
contract sees. Imports under `TYPE_CHECKING` count: a cycle that only the type checker follows is still a cycle
a reader has to untangle.
"""

from __future__ import annotations

import grimp


def test_no_module_imports_itself_through_another() -> None:
    graph = grimp.build_graph("openice", exclude_type_checking_imports=False)
    cycles = set()
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back is not None:
                cycles.add(" -> ".join((module, *back)))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles))
