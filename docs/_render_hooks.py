"""Write docs/hooks.md, the hook reference, from the hookspecs' signatures and docstrings.

The hookspec docstrings are the one place where the hooks' semantics are written; this script
renders them (and the ``Flavor`` fields) as Markdown::

    python docs/_render_hooks.py            # rewrite docs/hooks.md
    python docs/_render_hooks.py --check    # exit 1 when docs/hooks.md is out of date

``tests/test_docs.py`` fails when docs/hooks.md differs from what this script writes.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOOKS_MD = REPO / "docs" / "hooks.md"
if str(REPO) not in sys.path:  # run from a checkout without an install
    sys.path.insert(0, str(REPO))

from modelstore_core import hookspecs  # noqa: E402
from modelstore_core.plugin_api import Flavor  # noqa: E402

BANNER = re.compile(r"^# --- (.+?) -+$")
FIELD = re.compile(r"^:(param (\w+)|return):\s*(.*)$")


def inline(text: str) -> str:
    """reST inline markup of the docstrings as Markdown: ``code``, :role:`~a.b.Name`, `text <url>`_."""
    text = re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1] if '~' in m.group(0) else m.group(1)}`", text)
    text = re.sub(r"`([^`<]+?) <([^>]+)>`_", r"[\1](\2)", text)
    return text.replace("``", "`")


def prose(docstring: str) -> str:
    """A docstring's text (no ``:param:`` fields) as Markdown; a paragraph ending in ``::`` opens a code block."""
    out: list[str] = []
    lines = docstring.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.endswith("::"):
            out.append(inline(line[:-1]))
            out.append("")
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                block.append(lines[i][4:])
                i += 1
            out += ["```", *"\n".join(block).strip("\n").splitlines(), "```", ""]
            continue
        out.append(inline(line))
        i += 1
    return "\n".join(out).strip()


def split_fields(docstring: str) -> tuple[str, dict[str, str], str]:
    """(text, {param: description}, return description) of a Sphinx-style docstring."""
    text: list[str] = []
    params: dict[str, str] = {}
    returns = ""
    current: list[str] | None = None
    chunks: list[tuple[str | None, list[str]]] = []
    for line in docstring.splitlines():
        match = FIELD.match(line)
        if match:
            current = [match.group(3)]
            chunks.append((match.group(2) or "return", current))
        elif current is not None and line.strip():
            current.append(line.strip())
        else:
            current = None
            text.append(line)
    for name, words in chunks:
        description = inline(" ".join(words))
        if name == "return":
            returns = description
        else:
            params[name] = description
    return "\n".join(text).strip(), params, returns


def hook_sections() -> list[str]:
    source = inspect.getsource(hookspecs)
    banners = {n: m.group(1) for n, line in enumerate(source.splitlines(), 1) if (m := BANNER.match(line))}
    sections: list[str] = []
    group = None
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("modelstore_")):
            continue
        first_line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        banner = banners[max(n for n in banners if n < first_line)]
        if banner != group:
            group = banner
            sections.append(f"## {banner[0].upper()}{banner[1:]}")
        text, params, returns = split_fields(ast.get_docstring(node))
        lines = [
            f"### {node.name}",
            "",
            "```python",
            f"def {node.name}({ast.unparse(node.args)}) -> {ast.unparse(node.returns)}",
            "```",
            "",
            prose(text),
            "",
        ]
        for arg in node.args.args:
            lines.append(f"- `{arg.arg}` (`{ast.unparse(arg.annotation)}`): {params.get(arg.arg, '')}".rstrip())
        if node.args.args:
            lines.append("")
        lines.append(f"Returns `{ast.unparse(node.returns)}`: {returns}")
        sections.append("\n".join(lines))
    return sections


def flavor_section() -> str:
    intro, params, _ = split_fields(inspect.getdoc(Flavor))
    rows = ["| field | type | meaning |", "| --- | --- | --- |"]
    for field in dataclasses.fields(Flavor):
        cells = [f"`{field.name}`", f"`{field.type}`", params.get(field.name, "")]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(["## The `Flavor` type", "", prose(intro), "", *rows])


def render() -> str:
    return (
        "\n\n".join(
            [
                "# Hook reference",
                "<!-- Generated by `python docs/_render_hooks.py` from the hookspecs' docstrings: edit those, not this file. -->",
                "The hooks a plugin implements, as the core specifies them in "
                "[`modelstore_core/hookspecs.py`](../modelstore_core/hookspecs.py). How to write, test and debug "
                "a plugin: [plugins.md](plugins.md); [`plugins/modelstore-example`](../plugins/modelstore-example) "
                "implements every hook.",
                prose(inspect.getdoc(hookspecs).split("\n\n", 1)[1]),  # after the summary line, which the title says
                *hook_sections(),
                flavor_section(),
            ]
        )
        + "\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/hooks.md is out of date; write nothing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not HOOKS_MD.is_file() or HOOKS_MD.read_text() != text:
            print("docs/hooks.md is out of date: run `python docs/_render_hooks.py`", file=sys.stderr)
            return 1
        return 0
    HOOKS_MD.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
