"""The activation stage imports nothing from later stages (the one-way flow of the package).

Every import statement is read, also those inside functions (a lazy import is
still a dependency): the modules the activation stage may use are its own and
stage-free utilities.
"""

import ast
from pathlib import Path

import symlora

_PACKAGE = Path(symlora.__file__).parent
_ACTIVATION_STAGE = {"_activation", "_activation_parser", "_activation_catalogue", "_integrability",
                     "_overflow_safe", "_picklable", "_validate"}


def _symlora_imports(module):
    tree = ast.parse((_PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("symlora."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("symlora."))
    return found


def test_activation_stage_imports_only_itself():
    for module in sorted(_ACTIVATION_STAGE):
        later = _symlora_imports(module) - _ACTIVATION_STAGE
        assert not later, f"{module} imports later stages: {sorted(later)}"


def test_overflow_rules_are_shared_by_activation_and_codegen():
    # one set of rewriting rules: the code generator's node-aware form delegates to them
    assert "_overflow_safe" in _symlora_imports("_activation")
    assert "_overflow_safe" in _symlora_imports("_safe_rewriting")
