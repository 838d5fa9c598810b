"""Fixtures for the rules suite: a world per test on the shared emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from emdash_fb.emulator.server import ThreadedEmulator
from tests.rules.world import Team, World, build_team
from tests.support.rtdb import RawRtdb


@pytest.fixture
def world(raw: RawRtdb, emulator: ThreadedEmulator) -> Iterator[World]:
    w = World(raw, emulator.project_id)
    yield w
    w.release()


@pytest.fixture
def team(world: World) -> Team:
    return build_team(world)
