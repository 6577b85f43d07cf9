"""Meta-tests that keep the plugin docs and the hooks honest (as datasette does).

Every hookspec in ``modelstore_core/hookspecs.py`` must appear in ``docs/plugins.md`` as a heading
with its exact signature, with every argument described and its call semantics stated; the
example plugin must implement every hook; and the tests must call every hook.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pluggy
import pytest

from modelstore_core import hookspecs

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "plugins.md"
EXAMPLE = REPO / "plugins" / "modelstore-example"


def spec_nodes() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(Path(hookspecs.__file__).read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("modelstore_")}


SPECS = spec_nodes()


def signature(node: ast.FunctionDef) -> str:
    return f"{node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}"


def sections() -> dict[str, str]:
    """``### `...` `` heading text -> the section's body, for the hook reference."""
    text = DOCS.read_text()
    parts = re.split(r"^### `([^`]+)`\n", text, flags=re.M)
    found = {}
    for heading, body in zip(parts[1::2], parts[2::2], strict=True):
        found[heading] = body.split("\n## ", 1)[0]
    return found


def spec_options(name: str) -> dict:
    return getattr(hookspecs, name).modelstore_spec


def test_the_specs_are_found():
    # The parsed specs are exactly what pluggy registers as specs.
    marked = {name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "modelstore_spec")}
    assert marked == set(SPECS)
    assert len(SPECS) >= 6


@pytest.mark.parametrize("name", sorted(SPECS))
def test_hook_is_documented_with_its_exact_signature(name):
    sig = signature(SPECS[name])
    documented = sections()
    assert sig in documented, f"docs/plugins.md needs a heading: ### `{sig}`"
    body = documented[sig]
    for arg in SPECS[name].args.args:
        assert re.search(rf"^- `{arg.arg}` \(", body, flags=re.M), f"{name}: argument {arg.arg!r} is not described"
    assert "Returns" in body, f"{name}: the return value is not described"
    assert "```python" in body and f"def {name}(" in body, f"{name}: no example implementation"
    if spec_options(name).get("firstresult"):
        assert "**First result**" in body, f"{name} stops at the first non-None result: say so"
    else:
        assert "very implementation is called" in body, f"{name} calls every implementation: say so"


def test_docs_document_no_hook_that_does_not_exist():
    headings = [h for h in sections() if h.startswith("modelstore_")]
    assert sorted(h.split("(", 1)[0] for h in headings) == sorted(SPECS)


def test_python_examples_in_the_docs_compile():
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.S)
    assert len(blocks) >= len(SPECS)
    for block in blocks:
        compile(block, str(DOCS), "exec")


def test_the_conformance_kit_named_in_the_docs_exists():
    from modelstore_core import testing

    text = DOCS.read_text()
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
