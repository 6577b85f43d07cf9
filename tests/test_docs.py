"""Every relative link between the README, CONTRIBUTING.md, docs/*.md and the plugins' READMEs
leads somewhere: to a file or directory that exists and, with a ``#fragment``, to a heading of
that Markdown file (GitHub's anchors)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted([REPO / "README.md", REPO / "CONTRIBUTING.md", *(REPO / "docs").glob("*.md"), *(REPO / "plugins").glob("*/README.md")])

FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1", re.S)
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$", re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def prose(text: str) -> str:
    """The text outside fenced code blocks and code spans, where a link is a link."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens, repeats numbered."""
    seen: Counter[str] = Counter()
    found = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
        slug = re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")
        found.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return found


def links(page: Path) -> list[str]:
    text = prose(page.read_text())
    return INLINE_LINK.findall(text) + REFERENCE_LINK.findall(text)


def broken_links(pages: list[Path]) -> list[str]:
    broken = []
    for page in pages:
        for target in links(page):
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # https:, mailto:...: not checked here
                continue
            path, _, fragment = target.partition("#")
            destination = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(REPO).as_posix() if page.is_relative_to(REPO) else page.name}: {target}"
            if not destination.exists():
                broken.append(f"{where} (no such file)")
            elif fragment and destination.suffix == ".md" and fragment not in anchors(destination):
                broken.append(f"{where} (no heading #{fragment} in {destination.name})")
    return broken


def test_the_pages_are_found():
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    assert {"README.md", "CONTRIBUTING.md", "docs/plugins.md", "docs/hooks.md", "docs/guarantees.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page):
    assert page.read_text().strip(), f"{page} is empty"
    assert broken_links([page]) == []


def test_the_readme_links_to_every_docs_page():
    linked = {(REPO / target.partition("#")[0]).resolve() for target in links(REPO / "README.md")}
    missing = [p.name for p in sorted((REPO / "docs").glob("*.md")) if p.resolve() not in linked]
    assert not missing, f"README.md links to no {missing}"


def test_a_broken_link_or_anchor_is_reported(tmp_path):
    (tmp_path / "a.md").write_text(
        "# Top\n\n## The `Flavor` type\n\n## Top\n\n"
        "[ok](b.md#see-also) [ok](#the-flavor-type) [ok](#top-1) `[code](nowhere.md)` [web](https://example.com/x)\n"
        "```\n[fenced](nowhere.md)\n```\n"
        "[gone](missing.md) [bad anchor](b.md#nope) ![img](missing.png)\n"
    )
    (tmp_path / "b.md").write_text("# B\n\n## See also\n")
    assert broken_links([tmp_path / "a.md"]) == [
        "a.md: missing.md (no such file)",
        "a.md: b.md#nope (no heading #nope in b.md)",
        "a.md: missing.png (no such file)",
    ]


def test_the_plugin_guide_names_everything_plugin_api_exports():
    from modelstore_core import plugin_api
    from modelstore_core.storage import Storage

    guide = (REPO / "docs" / "plugins.md").read_text()
    listed = guide[guide.index("Everything a plugin imports comes from one module") : guide.index("Commands take the command line's")]
    named = set(re.findall(r"`(\w+)`", listed))
    assert sorted(set(plugin_api.__all__) - named) == []
    assert sorted(named - set(plugin_api.__all__) - {"plugin_api", "modelstore_core"}) == []  # nothing it does not export
    # "eight primitives": as many as Storage's abstract methods, in the guide and in the example's docstring
    primitives = sorted(Storage.__abstractmethods__)
    words = {7: "seven", 8: "eight", 9: "nine"}
    assert f"implements {words[len(primitives)]} primitives of the `Storage` base class" in guide.replace("\n", " ")
    example = (REPO / "plugins" / "modelstore-example" / "modelstore_example" / "storage.py").read_text()
    assert f"the {words[len(primitives)]} primitives a backend implements" in example.replace("\n", " ")
    assert all(f"``{name}``" in example for name in primitives)
