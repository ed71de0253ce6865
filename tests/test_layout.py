"""The package's shape: folders by concern, no import cycle, no shadowed standard-library name."""
import ast
import sys

from tests.helpers import ROOT

PACKAGE = ROOT / "nas"


def module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path):
    """Modules of `nas` that `path` imports anywhere (functions included), less TYPE_CHECKING-only ones."""
    tree = ast.parse(path.read_text())
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("nas"))
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("nas") and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_no_import_cycle_between_modules():
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {m: {i for i in imports_of(p) if i in modules and i != m} for m, p in modules.items()}
    state = {}

    def visit(m, stack):
        state[m] = "open"
        for n in graph[m]:
            if state.get(n) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(n):] + [n]))
            if n not in state:
                visit(n, stack + [n])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])


def test_no_module_shadows_a_standard_library_name():
    clashes = [str(p.relative_to(ROOT)) for p in PACKAGE.rglob("*.py") if p.stem in sys.stdlib_module_names]
    assert clashes == []


def test_every_folder_says_what_it_is_for():
    for init in PACKAGE.rglob("__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT)} has no docstring"


def test_nothing_edits_sys_path():
    offenders = [str(p.relative_to(ROOT)) for folder in ("nas", "scripts", "tests") for p in (ROOT / folder).rglob("*.py")
                 if "sys.path.insert" in p.read_text() and p.name != "test_layout.py"]
    assert offenders == []
