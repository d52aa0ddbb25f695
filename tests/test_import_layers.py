"""The package's imports point down: no circle anywhere, function-level imports included.

Every ``import`` and ``from ... import`` of the package's own modules is read from the
source with ``ast`` (wherever it sits: module level, inside a function, in a ``try``),
except those under ``if TYPE_CHECKING:``, which never run. A cycle in that graph fails
the test with the modules that make it.

The simulator (``wxpay_simulator``, its own distribution) is read the same way: the
production package never imports it, and it imports only the package's ``wechatpay``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import django_wxpay_profitsharing
import wxpay_simulator

PACKAGE = "django_wxpay_profitsharing"
ROOT = Path(django_wxpay_profitsharing.__file__).parent
SIMULATOR = "wxpay_simulator"
SIMULATOR_ROOT = Path(wxpay_simulator.__file__).parent
#: Top-level names whose imports are edges of the graph.
OURS = (PACKAGE, SIMULATOR)


def module_name(path: Path) -> str:
    root = SIMULATOR_ROOT if path.is_relative_to(SIMULATOR_ROOT) else ROOT
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_ours(module: str) -> bool:
    return any(module == top or module.startswith(top + ".") for top in OURS)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_modules(path: Path, modules: set[str], source: str | None = None) -> set[str]:
    """Our modules ``path`` imports (``from . import x`` counts as ``x``); ``source``, when
    given, is read as that file's text."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if is_ours(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if is_ours(target):
                for alias in node.names:  # ``from . import services`` imports a module
                    candidate = f"{target}.{alias.name}"
                    # A name that is no submodule comes from the package's __init__.
                    found.add(candidate if candidate in modules else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8") if source is None else source))
    found.discard(name)
    return {m for m in found if m in modules}


def import_graph() -> dict[str, set[str]]:
    """Both packages' modules and the modules of either that each imports."""
    paths = [
        p for root in (ROOT, SIMULATOR_ROOT) for p in root.rglob("*.py")
        if "migrations" not in p.parts
    ]  # fmt: skip
    modules = {module_name(p) for p in paths}
    graph = {module_name(p): imported_modules(p, modules) for p in paths}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := walk(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := walk(node)):
            return cycle
    return None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle or [])


def test_the_detector_sees_function_level_cycles(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_function_level_imports_are_edges():
    graph = import_graph()
    # task_backends imports tasks inside a function; the edge must be in the graph.
    assert f"{PACKAGE}.tasks" in graph[f"{PACKAGE}.task_backends"]


def test_the_service_layer_sits_below_the_background_machinery():
    graph = import_graph()
    below = {f"{PACKAGE}.{m}" for m in ("services", "transitions", "decisions", "outbox")}
    above = {f"{PACKAGE}.{m}" for m in ("task_backends", "tasks", "admin", "api.views")}
    for module in below:
        assert not graph[module] & above, (module, graph[module] & above)
    # Pure: no ORM (the models package, and each of its modules).
    assert not {m for m in graph[f"{PACKAGE}.decisions"] if _in(m, ("models",))}


def test_production_never_imports_the_simulator():
    """``pip install django-wxpay-profitsharing`` has no ``wxpay_simulator``: no import of
    it may run, at module level or in a function."""
    graph = import_graph()
    assert not SIMULATOR_ROOT.is_relative_to(ROOT)
    for module, imported in graph.items():
        if module.startswith(PACKAGE):
            assert not {m for m in imported if not m.startswith(PACKAGE)}, module


def test_the_simulator_uses_only_the_wechatpay_layer():
    """It verifies and signs with the client's own crypto; Django models, settings and
    services are the app under test, never the stand-in's."""
    graph = import_graph()
    simulator_modules = [m for m in graph if m.startswith(SIMULATOR)]
    assert f"{SIMULATOR}.testing.inprocess" in simulator_modules
    for module in simulator_modules:
        used = {m for m in graph[module] if m.startswith(PACKAGE)}
        assert all(m.startswith(f"{PACKAGE}.wechatpay.") for m in used), (module, used)


def test_a_function_level_import_of_the_simulator_is_seen():
    """The detector the production rule relies on finds an import inside a function."""
    source = "def f():\n    from wxpay_simulator.testing import SimulatorProcess\n"
    modules = {f"{PACKAGE}.services", "wxpay_simulator.testing"}
    found = imported_modules(ROOT / "services.py", modules, source)
    assert found == {"wxpay_simulator.testing"}


#: The doors: they parse, ask the desk, render.
DOORS = ("admin", "api", "management.commands")
#: The task machinery, which only the desk (and the poller's own command) hands work to.
MACHINERY = {f"{PACKAGE}.{m}" for m in ("task_backends", "tasks", "pool")}
#: The poller is the machinery's own entry point, not a door that asks for operations.
MACHINERY_ENTRY_POINTS = {f"{PACKAGE}.management.commands.wxpay_process_returns"}


def _in(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == f"{PACKAGE}.{p}" or module.startswith(f"{PACKAGE}.{p}.") for p in packages)


def test_doors_never_import_the_task_machinery():
    graph = import_graph()
    doors = [m for m in graph if _in(m, DOORS) and m not in MACHINERY_ENTRY_POINTS]
    assert doors, "no door found: the package layout changed"
    for module in doors:
        assert not graph[module] & MACHINERY, (module, graph[module] & MACHINERY)


def test_the_core_never_imports_the_desk():
    graph = import_graph()
    desk = {m for m in graph if _in(m, ("desk",))}
    core = [
        m for m in graph
        if m.startswith(f"{PACKAGE}.") and not _in(m, (*DOORS, "desk"))
    ]  # fmt: skip
    assert f"{PACKAGE}.services" in core and f"{PACKAGE}.models" in core
    for module in core:
        assert not graph[module] & desk, (module, graph[module] & desk)


def test_doors_ask_the_desk_not_the_services_for_operations():
    """No door calls the service layer's write operations itself."""
    graph = import_graph()
    writers = {f"{PACKAGE}.{m}" for m in ("services", "clawbacks", "transitions")}
    for module in graph:
        if _in(module, DOORS) and module not in MACHINERY_ENTRY_POINTS:
            assert not graph[module] & writers, (module, graph[module] & writers)
