"""Shared approvals on real screens: a guest's message makes the agent ask, the owner answers.

Real pseudo-terminals read off the rendered screen, the real rules on the
emulator, the real runner with the echo agent (which asks for ``Bash`` on
``run: CMD`` and really runs CMD when allowed).
"""

from __future__ import annotations

from pathlib import Path

from emdash_fb.emulator.server import ThreadedEmulator
from emdash_fb.runner.agents import load_agent
from tests.cli.test_repl import open_chat, term_env, terminals  # noqa: F401 (fixtures)
from tests.cli.test_repl_states import share, wait_toolbar
from tests.support.runner import BackgroundRunner
from tests.support.terminal import Terminal


def three(env: dict[str, str], opened: list[Terminal]) -> tuple[Terminal, Terminal, Terminal]:
    """alice shares; bob and dave join as editors."""
    alice = open_chat(env, opened, "alice", "--share", "--name", "alice")
    code = share(alice)
    bob = open_chat(env, opened, "bob", "--join", code, "--name", "bob")
    dave = open_chat(env, opened, "dave", "--join", code, "--name", "dave")
    wait_toolbar(dave, "3 online")
    return alice, bob, dave


def test_a_guest_asks_the_owner_approves_with_y_or_denies_with_a_reason(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
) -> None:
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"}), workdir=tmp_path):
        alice, bob, dave = three(term_env, terminals)
        bob.line("please run: touch approved.txt")
        alice.wait_for("the agent asks to use Bash for bob: touch approved.txt")
        alice.wait_for("/approve or /deny [reason] (y or n on an empty prompt)")
        alice.wait_for("y allow · n deny")  # the toolbar, while it waits
        bob.wait_for("waiting for the owner to answer")
        dave.wait_for("waiting for the owner to approve Bash: touch approved.txt")
        dave.line("/approve")  # an editor, under the default owner-only policy
        dave.wait_for("only the owner may answer the agent's request")
        assert not (tmp_path / "approved.txt").exists()
        alice.type("y")  # a single key on the empty prompt
        for t in (alice, bob, dave):
            t.wait_for("alice allowed Bash: touch approved.txt")
        bob.wait_for("I ran touch approved.txt: it finished with status 0.")
        assert (tmp_path / "approved.txt").exists()

        bob.line("now run: touch denied.txt")
        alice.wait_for("the agent asks to use Bash for bob: touch denied.txt")
        alice.line("/deny not on my machine")
        dave.wait_for("alice denied Bash: touch denied.txt (not on my machine)")
        bob.wait_for("I did not run touch denied.txt: alice said no (not on my machine).")
        assert not (tmp_path / "denied.txt").exists()
        alice.line("/approve")
        alice.wait_for("the agent is not asking for anything now")
        alice.line("/status")
        alice.wait_for("answered by the owner; pre-approved for everyone:")
        alice.wait_for(f"echo in {tmp_path.name}")


def test_the_owner_lets_editors_answer_and_a_timeout_denies(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
) -> None:
    agent = load_agent("echo", {"rate": "0"})
    with BackgroundRunner(rules_emu, agent, workdir=tmp_path, approval_wait_s=3.0):
        alice, bob, dave = three(term_env, terminals)
        bob.line("/policy approvers editors")
        bob.wait_for("only the session owner can change the approval policy")
        alice.line("/policy approvers editors")
        alice.wait_for("approvals: answered by the owner or an editor")
        bob.line("run: touch by-dave.txt")
        dave.wait_for("/approve or /deny [reason]")
        dave.line("/approve")
        bob.wait_for("dave allowed Bash: touch by-dave.txt")
        bob.wait_for("I ran touch by-dave.txt")
        bob.line("run: touch too-late.txt")
        alice.wait_for("Bash: touch too-late.txt — denied: nobody answered in time", timeout=30)
        bob.wait_for("I did not run touch too-late.txt: nobody answered in time")
    assert (tmp_path / "by-dave.txt").exists() and not (tmp_path / "too-late.txt").exists()


def test_attach_a_file_and_everyone_sees_its_line(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
) -> None:
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x02" * (180 * 1024))
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"}), workdir=tmp_path):
        alice, bob, _dave = three(term_env, terminals)
        bob.line(f"/attach {tmp_path / 'missing.png'}")
        bob.wait_for("no such file:")
        bob.line(str(shot))  # a path alone on a line (dragged into the terminal)
        bob.wait_for("attached [image shot.png 180 KB]: it goes with your next message")
        bob.wait_for("attached to your next message: [image shot.png 180 KB]")
        bob.line("what is wrong in this screenshot?")
        alice.wait_for("what is wrong in this screenshot?")
        alice.wait_for("[image shot.png 180 KB]")
        bob.wait_for("You attached shot.png (image, 180 KB).")


def test_claude_code_on_screen_asks_and_resumes_after_kill_9(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
) -> None:
    from tests.runner.test_native_sessions import claude_runner, kill9, stop

    state, work = tmp_path / "state", tmp_path / "repo"
    state.mkdir()
    work.mkdir()
    alice, bob, _dave = three(term_env, terminals)
    runner = claude_runner(rules_emu, state, work)
    try:
        bob.line("run: echo from-claude > out.txt")
        alice.wait_for("the agent asks to use Bash for bob: echo from-claude > out.txt", timeout=30)
        alice.line("/approve")
        bob.wait_for("alice allowed Bash: echo from-claude > out.txt")
        bob.wait_for("turn 1 of ")
        wait_toolbar(bob, "agent idle · claude")
        assert (work / "out.txt").read_text() == "from-claude\n"
    finally:
        kill9(runner)
    alice.line("/status")
    screen = alice.wait_for("agent session")
    session_id = screen.split("agent session", 1)[1].split()[0]
    runner = claude_runner(rules_emu, state, work)
    try:
        alice.line("are you still there?")
        bob.wait_for(f"turn 2 of {session_id}", timeout=30)
    finally:
        stop(runner)


def test_a_hostile_request_shows_exactly_what_would_run(
    term_env: dict[str, str],  # noqa: F811
    terminals: list[Terminal],  # noqa: F811
    rules_emu: ThreadedEmulator,
    tmp_path: Path,
) -> None:
    """A guest writing raw REST hides the real command behind a carriage return, an escape
    that erases the line and a right-to-left override: the owner sees every one of them."""
    from emdash_fb.cli.context import AppContext
    from tests.support.rtdb import raw_send

    alice = open_chat(term_env, terminals, "alice", "--share", "--name", "alice")
    code = share(alice)
    mallory = AppContext(profile="mallory", env=term_env)
    mallory.auth.sign_in_anonymous("mallory")
    joined = mallory.sessions.join(code)
    alice.wait_for("mallory joined")
    hostile = "run: touch harmless\r\x1b[2K\u202etouch evil.txt\x1b]0;x\x07"
    with BackgroundRunner(rules_emu, load_agent("echo", {"rate": "0"}), workdir=tmp_path):
        raw_send(rules_emu, mallory, joined.session, "mallory", hostile)
        screen = alice.wait_for("the agent asks to use Bash for mallory:")
        assert "touch harmless^M^[[2K<U+202E>touch evil.txt^[]0;x^G" in screen, screen
        alice.wait_for("y allow · n deny")
        alice.type("n")
        alice.wait_for("alice denied Bash: touch harmless^M^[[2K<U+202E>touch evil.txt")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "harmless").exists()
