"""The rules file itself: loads as-is, and grants nothing at the levels nobody may list."""

from __future__ import annotations

import json

import pytest

from tests.rules.world import RULES_FILE, World, ok


def strict(world: World) -> dict:
    got = world.raw.http.get(
        f"{world.raw.base}/.settings/rules.json",
        params={"ns": world.raw.ns, "format": "strict"},
        headers={"Authorization": "Bearer owner"},
        timeout=10,
    )
    return ok(got).json()["rules"]


def test_served_back_unchanged_with_comments(world: World) -> None:
    got = world.raw.http.get(
        f"{world.raw.base}/.settings/rules.json",
        params={"ns": world.raw.ns},
        headers={"Authorization": "Bearer owner"},
        timeout=10,
    )
    assert ok(got).text == RULES_FILE.read_text()
    assert "//" in got.text  # the explanations ship with the file


@pytest.mark.parametrize("path", [(), ("sessions",), ("invites",)])
def test_no_read_or_write_grant_above_records(world: World, path: tuple[str, ...]) -> None:
    node = strict(world)
    for key in path:
        node = node[key]
    assert ".read" not in node and ".write" not in node, json.dumps(node)[:200]


def test_indexes_for_every_query(world: World) -> None:
    rules = strict(world)
    assert rules["work"][".indexOn"] == ["at"]
    assert rules["sessions"]["$sid"]["transcript"][".indexOn"] == ["at"]
    assert rules["sessions"]["$sid"]["queue"][".indexOn"] == ["createdAt"]


def test_generated_from_its_source() -> None:
    """rules/database.rules.json is written by rules/build_rules.py: edit that, then run it."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(RULES_FILE.with_name("build_rules.py")), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
