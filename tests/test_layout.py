"""The package's shape: folders by concern, no import cycle, no shadowed standard-library name."""

import ast
import sys

from tests.helpers import ROOT

PACKAGE = ROOT / "nas"


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Modules of `nas` that `path` imports anywhere: inside functions and under TYPE_CHECKING
    too, since an arrow that is only drawn lazily or for the type checker is still an arrow."""
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nas"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nas") and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


# The floors, lowest first: a package imports only from the floors below its own.
FLOORS = (
    ("core",),
    ("data", "space"),
    ("genotype",),
    ("search", "evaluation"),
    ("analysis",),
    ("report",),
    ("tools",),
    ("api",),  # nas/api.py, the Python API: a module above every package
)
FLOOR = {package: level for level, packages in enumerate(FLOORS) for package in packages}


def package_of(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def test_no_import_cycle_between_modules():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {i for i in imports_of(p) if i in modules and i != m} for m, p in modules.items()}
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n) :] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_imports_point_down_the_floors():
    """`python -m` entry points (`__main__`) stand above every floor: nothing imports them."""
    assert {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()} <= set(FLOOR)
    upward = []
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        here = package_of(module)
        if here is None or path.stem == "__main__":
            continue
        for target in imports_of(path):
            there = package_of(target)
            if there is not None and there != here and FLOOR[there] >= FLOOR[here]:
                upward.append(f"{path.relative_to(ROOT)} -> {target}")
    assert upward == []


def test_entry_points_only_dispatch():
    """A `__main__` module stands above the floors, so it holds no logic of its own."""
    for path in PACKAGE.rglob("__main__.py"):
        tree = ast.parse(path.read_text())
        defined = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert defined == [], f"{path.relative_to(ROOT)} defines {defined}: move them to nas/tools/"


def test_no_module_shadows_a_standard_library_name():
    clashes = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if p.stem in sys.stdlib_module_names]
    assert clashes == []


def test_every_folder_says_what_it_is_for():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT)} has no docstring"


def test_nothing_edits_sys_path():
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("nas", "scripts", "tests")
        for p in (ROOT / folder).rglob("*.py")
        if "sys.path.insert" in p.read_text() and p.name != "test_layout.py"
    ]
    assert offenders == []
