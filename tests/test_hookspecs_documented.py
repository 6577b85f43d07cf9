"""Meta-tests that keep the hook docs and the hooks honest (as datasette does).

The hookspec docstrings in ``modelstore_core/hookspecs.py`` are the one place where the hooks'
semantics are written: each must describe every argument, the return value and how the hook is
called; ``docs/hooks.md`` must be what ``docs/_render_hooks.py`` renders from them today; the
plugin author's guide, ``docs/plugins.md``, must show an implementation of every hook; the example
plugin must implement every hook; and the tests must call every hook.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
from pathlib import Path

import pluggy
import pytest

from modelstore_core import hookspecs

REPO = Path(__file__).resolve().parents[1]
GUIDE = REPO / "docs" / "plugins.md"
REFERENCE = REPO / "docs" / "hooks.md"
RENDERER = REPO / "docs" / "_render_hooks.py"
EXAMPLE = REPO / "plugins" / "modelstore-example"


def spec_nodes() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("modelstore_")}


SPECS = spec_nodes()


def spec_options(name: str) -> dict:
    return getattr(hookspecs, name).modelstore_spec


def renderer():
    spec = importlib.util.spec_from_file_location("_render_hooks", RENDERER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def guide_code_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)


def test_the_specs_are_found():
    # The parsed specs are exactly what pluggy registers as specs.
    marked = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "modelstore_spec")}
    assert marked == set(SPECS)
    assert len(SPECS) >= 6


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hookspec_docstring_documents_the_hook(name):
    doc = ast.get_docstring(SPECS[name])
    assert doc, f"{name} has no docstring"
    for arg in SPECS[name].args.args:
        assert re.search(rf"^:param {arg.arg}: \S", doc, flags=re.M), f"{name}: argument {arg.arg!r} is not described (:param {arg.arg}:)"
    assert re.search(r"^:return: \S", doc, flags=re.M), f"{name}: the return value is not described (:return:)"
    if spec_options(name).get("firstresult"):
        assert "Stops at first non-None result" in doc, f"{name} stops at the first non-None result: say so"
    else:
        assert "Every implementation is called" in doc, f"{name} calls every implementation: say so"


def test_the_hook_reference_is_rendered_from_the_hookspecs():
    text = REFERENCE.read_text()
    assert text == renderer().render(), "docs/hooks.md is out of date: run `python docs/_render_hooks.py`"
    headings = re.findall(r"^### (\w+)$", text, flags=re.M)
    assert sorted(headings) == sorted(SPECS)
    for name, node in SPECS.items():
        assert f"def {name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}" in text


def test_the_renderer_check_fails_on_a_stale_reference(tmp_path, monkeypatch):
    module = renderer()
    stale = tmp_path / "hooks.md"
    stale.write_text(module.render().replace("Every implementation is called", "Called"))
    monkeypatch.setattr(module, "HOOKS_MD", stale)
    assert module.main(["--check"]) == 1
    assert module.main([]) == 0 and module.main(["--check"]) == 0  # rewritten


@pytest.mark.parametrize("name", sorted(SPECS))
def test_the_guide_shows_an_implementation_of_every_hook(name):
    assert any(f"def {name}(" in block for block in guide_code_blocks()), f"docs/plugins.md has no example of {name}"


def test_the_guide_does_not_repeat_the_hook_reference():
    # Hook semantics live in the hookspec docstrings; the guide links to their rendering.
    text = GUIDE.read_text()
    assert "(hooks.md)" in text
    for name, node in SPECS.items():
        signature = f"{name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"
        assert signature not in text, f"docs/plugins.md repeats the signature of {name}: link to hooks.md"


def test_python_examples_in_the_guide_compile():
    blocks = guide_code_blocks()
    assert len(blocks) >= len(SPECS) - 2  # some blocks show two hooks
    for block in blocks:
        compile(block, str(GUIDE), "exec")


def test_the_conformance_kit_named_in_the_docs_exists():
    from modelstore_core import testing

    text = GUIDE.read_text()
    for name in re.findall(r"from modelstore_core\.testing import ([\w, ]+)", text):
        for cls in name.split(","):
            assert hasattr(testing, cls.strip()), f"docs import {cls.strip()} from modelstore_core.testing"


def test_the_example_plugin_implements_every_hook(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.delitem(sys.modules, "modelstore_example", raising=False)
    import modelstore_example

    pm = pluggy.PluginManager("modelstore")
    pm.add_hookspecs(hookspecs)
    pm.register(modelstore_example.plugin, name="example")  # validates argument names against the specs
    pm.check_pending()
    assert sorted(caller.name for caller in pm.get_hookcallers(modelstore_example.plugin)) == sorted(SPECS)


def test_every_hook_is_exercised_by_a_test(request, hook_calls, deselected):
    """Every hook was called, with an implementation, by the tests of this run (conftest records the
    calls on every plugin manager loaded; naming a hook in a comment or a string does not count)."""
    session = request.session
    ran = {Path(str(item.path)).resolve() for item in session.items}
    # core_only and interop run in sessions of their own (other installs)
    wanted = {p.resolve() for p in (REPO / "tests").glob("**/test_*.py") if not {"core_only", "interop"} & set(p.parts)}
    if deselected or ran != wanted or hasattr(request.config, "workerinput"):
        pytest.skip("needs the whole core suite in one process (`pytest tests --ignore=tests/core_only --ignore=tests/interop`)")
    assert session.items[-1] is request.node  # after every test that could call a hook
    missing = [name for name in SPECS if not hook_calls[name]]
    assert not missing, f"no test calls {missing}: register a throwaway plugin implementing it, or test a plugin that does"
