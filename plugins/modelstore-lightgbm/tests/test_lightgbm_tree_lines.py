"""The trees' lines are read in one pass over the whole section (``_all_tree_lines``); the
tree-at-a-time reader (``_tree_lines``) names what is wrong. The one-pass reader must take exactly
what the other takes, and read it the same: checked on a real model's section, damaged in many
seeded ways (bytes changed, inserted, removed, lines moved, tree sizes shifted)."""

from __future__ import annotations

import random

import lightgbm as lgb
import numpy as np
from modelstore_lightgbm._validate import _all_tree_lines, _Bad, _tree_lines


def tree_section() -> tuple[bytes, list[int]]:
    X = np.random.default_rng(0).normal(size=(200, 4))
    text = lgb.train({"num_leaves": 4, "verbose": -1, "num_threads": 1}, lgb.Dataset(X, (X[:, 0] > 0).astype(int)), 5).model_to_string()
    head = text[: text.index("Tree=0")]
    sizes = [int(s) for s in next(line for line in head.split("\n") if line.startswith("tree_sizes=")).split("=")[1].split(" ")]
    start = len(head.encode())
    return text.encode()[start : start + sum(sizes)], sizes


def one_at_a_time(section: bytes, sizes: list[int]) -> list[dict[str, str]] | None:
    trees, offset = [], 0
    try:
        for t, size in enumerate(sizes):
            if offset + size > len(section):
                return None
            trees.append(_tree_lines(section[offset : offset + size], t))
            offset += size
    except _Bad:
        return None
    return trees


def damaged(section: bytes, sizes: list[int], rng: random.Random) -> tuple[bytes, list[int]]:
    data, sizes = bytearray(section), list(sizes)
    for _ in range(rng.randint(1, 3)):
        at, how = rng.randrange(len(data)), rng.random()
        if how < 0.3:
            data[at] = rng.choice(b"\n=\x00 aZ9\xc3-")
        elif how < 0.5:
            data.insert(at, rng.choice(b"\n=a "))
        elif how < 0.7:
            del data[at]
        elif how < 0.8:
            sizes[rng.randrange(len(sizes))] += rng.choice((-2, -1, 1, 2))
        else:
            lines = bytes(data).split(b"\n")
            lines.insert(rng.randrange(len(lines)), lines.pop(rng.randrange(len(lines))))
            data = bytearray(b"\n".join(lines))
    sizes[-1] += len(data) - sum(sizes)  # the sizes cover the section, as check_model cuts it
    return bytes(data), sizes


def test_the_one_pass_reader_takes_exactly_what_the_tree_at_a_time_reader_takes():
    section, sizes = tree_section()
    assert _all_tree_lines(section, sizes) == one_at_a_time(section, sizes) is not None
    rng, taken = random.Random(0), 0
    for _ in range(1500):
        data, shifted = damaged(section, sizes, rng)
        if shifted[-1] < 1:
            continue
        fast = _all_tree_lines(data, shifted)
        if fast is not None:
            taken += 1
            assert fast == one_at_a_time(data, shifted), (data, shifted)
    assert taken > 30  # damage the readers both take (a changed value, a moved line) was tried
