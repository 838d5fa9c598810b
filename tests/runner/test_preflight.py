"""A runner started with an agent CLI that isn't installed says so at once, in one line."""

from __future__ import annotations

import pytest

from emdash_fb.emulator.server import ThreadedEmulator
from tests.runner.test_runner import _runner_process


@pytest.mark.parametrize(
    ("agent", "words"),
    [
        ("claude", "Claude Code not found: no-such-claude; install it with npm install -g @anthropic-ai/claude-code"),
        ("codex", "Codex CLI not found: no-such-codex; install it with npm install -g @openai/codex"),
        ("gemini", "Gemini CLI not found: no-such-gemini; install it with npm install -g @google/gemini-cli"),
    ],
)  # fmt: skip
def test_a_missing_cli_stops_the_runner_with_one_line(
    rules_emu: ThreadedEmulator, agent: str, words: str
) -> None:
    proc = _runner_process(rules_emu, "--agent", agent, "--agent-opt", f"bin=no-such-{agent}")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert out.strip() == f"error: {words}", out
