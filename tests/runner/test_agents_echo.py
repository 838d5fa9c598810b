"""The offline echo agent: deterministic replies, its pace, and its real read-only tools."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from emdash_fb.runner.agents import (
    ChatMessage,
    TextDelta,
    ToolResult,
    ToolStart,
    TurnInput,
    load_agent,
)


def turn(text: str, workdir: Path = Path("."), author: str = "alice", history=()) -> TurnInput:
    return TurnInput(
        session="s",
        message_id="m",
        history=tuple(history),
        message=ChatMessage("user", author, text),
        workdir=workdir,
    )


def run(agent, t: TurnInput) -> list:
    async def go():
        return [event async for event in agent.run(t)]

    return asyncio.run(go())


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def tools_of(events) -> list:
    return [e for e in events if not isinstance(e, TextDelta)]


def test_reply_names_the_asker_and_is_deterministic():
    history = [
        ChatMessage("user", "bob", "hello"),
        ChatMessage("assistant", "echo", "bob asked: hello"),
        ChatMessage("user", "carol", "hi all"),
    ]
    agent = load_agent("echo", {"rate": "0"})
    first = run(agent, turn("please fix the bug", author="dave", history=history))
    second = run(agent, turn("please fix the bug", author="dave", history=history))
    assert first == second
    assert tools_of(first) == []
    assert text_of(first) == (
        "dave asked: please fix the bug\n\n"
        "I have seen 3 earlier messages in this conversation (bob, the agent, carol). "
        "Mode: code."
    )


def test_streams_word_by_word():
    events = run(load_agent("echo", {"rate": "0"}), turn("one two  three"))
    words = [e.text for e in events]
    assert words[:5] == ["alice ", "asked: ", "one ", "two  ", "three\n\n"]
    assert all(isinstance(e, TextDelta) and e.text.strip() for e in events)


def test_no_history_summary_and_plan_mode():
    t = TurnInput("s", "m", (), ChatMessage("user", "alice", "hi"), mode="plan")
    text = text_of(run(load_agent("echo", {"rate": "0"}), t))
    assert text.endswith("I have seen 0 earlier messages in this conversation. Mode: plan.")


def test_rate_is_honoured_roughly():
    t = turn("a b c d e f g h i j")  # about 20 words in the whole reply
    start = time.monotonic()
    slow = run(load_agent("echo", {"rate": "40"}), t)
    slow_time = time.monotonic() - start
    start = time.monotonic()
    fast = run(load_agent("echo", {"rate": "0"}), t)
    fast_time = time.monotonic() - start
    assert slow == fast
    assert len(slow) >= 20
    assert slow_time >= (len(slow) / 40) * 0.8
    assert fast_time < slow_time / 2


def test_default_rate_is_about_thirty_words_a_second():
    assert load_agent("echo").rate == 30


@pytest.mark.parametrize("text", ["ls", "can you LS please", "list files", "list the files?"])
def test_ls_lists_the_real_workdir(tmp_path, text):
    (tmp_path / "b.txt").write_text("b")
    (tmp_path / "a.py").write_text("a")
    (tmp_path / "src").mkdir()
    events = run(load_agent("echo", {"rate": "0"}), turn(text, tmp_path))
    start, result = tools_of(events)
    assert start == ToolStart(id="echo-1", name="list_files", input=".")
    assert result == ToolResult(id="echo-1", output="a.py\nb.txt\nsrc/", ok=True)
    assert "The working folder has 3 entries: a.py, b.txt, src/." in text_of(events)
    # the tool events come after the "asked" line and before the mention of the result
    assert isinstance(events[0], TextDelta)
    index = events.index(start)
    assert "asked" in text_of(events[:index])
    assert "3 entries" in text_of(events[index:])


@pytest.mark.parametrize("text", ["tools", "read ls.txt", "falls", "pls", "hello"])
def test_ls_is_a_whole_word(tmp_path, text):
    (tmp_path / "ls.txt").write_text("x")
    events = run(load_agent("echo", {"rate": "0"}), turn(text, tmp_path))
    assert all(e.name != "list_files" for e in tools_of(events) if isinstance(e, ToolStart))


def test_ls_empty_folder(tmp_path):
    events = run(load_agent("echo", {"rate": "0"}), turn("ls", tmp_path))
    assert tools_of(events)[1] == ToolResult("echo-1", "(empty)", True)
    assert "The working folder is empty." in text_of(events)


def test_ls_missing_folder_fails_the_tool_not_the_turn(tmp_path):
    events = run(load_agent("echo", {"rate": "0"}), turn("ls", tmp_path / "gone"))
    result = tools_of(events)[1]
    assert result.ok is False and "cannot list" in result.output
    assert "I could not list the working folder" in text_of(events)


def test_ls_listing_is_truncated(tmp_path):
    for i in range(150):
        (tmp_path / f"f{i:03}").write_text("")
    events = run(load_agent("echo", {"rate": "0"}), turn("ls", tmp_path))
    output = tools_of(events)[1].output
    assert output.splitlines()[-1] == "… (50 more)"
    assert len(output.splitlines()) == 101
    assert "150 entries" in text_of(events)


def test_read_a_file(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.md").write_text("\n# Todo\n- fix\n")
    events = run(load_agent("echo", {"rate": "0"}), turn("please read notes/todo.md.", tmp_path))
    start, result = tools_of(events)
    assert start == ToolStart("echo-1", "read_file", "notes/todo.md")
    assert result == ToolResult("echo-1", "\n# Todo\n- fix\n", True)
    assert 'notes/todo.md has 3 lines; it starts with "# Todo".' in text_of(events)


def test_read_quoted_path_and_both_tools(tmp_path):
    (tmp_path / "a b.txt").write_text("x")
    (tmp_path / "main.py").write_text("print('hi')\n")
    events = run(load_agent("echo", {"rate": "0"}), turn("ls then read `main.py`", tmp_path))
    tools = tools_of(events)
    assert [type(e) for e in tools] == [ToolStart, ToolResult, ToolStart, ToolResult]
    assert tools[2] == ToolStart("echo-2", "read_file", "main.py")
    assert tools[3].output == "print('hi')\n" and tools[3].ok


def test_read_output_is_truncated_and_invalid_utf8_survives(tmp_path):
    (tmp_path / "big.bin").write_bytes(b"\xff\xfe" + b"y" * 10_000)
    events = run(load_agent("echo", {"rate": "0"}), turn("read big.bin", tmp_path))
    result = tools_of(events)[1]
    assert result.ok
    assert result.output.startswith("\ufffd\ufffdyyy")
    assert "more characters" in result.output
    assert len(result.output) < 4100


@pytest.mark.parametrize(
    "path", ["../secret.txt", "sub/../../secret.txt", "{outside}/secret.txt", "link/secret.txt"]
)
def test_read_refuses_paths_that_escape(tmp_path, path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET")
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (tmp_path / "secret.txt").write_text("TOP SECRET")
    os.symlink(outside, work / "link")
    path = path.format(outside=outside)
    events = run(load_agent("echo", {"rate": "0"}), turn(f"read {path}", work))
    start, result = tools_of(events)
    assert start.name == "read_file"
    assert result.ok is False
    assert "outside the working folder" in result.output
    assert "TOP SECRET" not in result.output and "TOP SECRET" not in text_of(events)
    assert "it is outside the working folder" in text_of(events)


def test_read_missing_file_and_folder(tmp_path):
    (tmp_path / "dir").mkdir()
    agent = load_agent("echo", {"rate": "0"})
    missing = tools_of(run(agent, turn("read nope.txt", tmp_path)))[1]
    assert missing == ToolResult("echo-1", "no such file: nope.txt", False)
    folder = tools_of(run(agent, turn("read dir", tmp_path)))[1]
    assert folder.ok is False and "is a folder" in folder.output


def test_read_absolute_path_inside_workdir_is_allowed(tmp_path):
    (tmp_path / "x.txt").write_text("inside")
    events = run(load_agent("echo", {"rate": "0"}), turn(f"read {tmp_path}/x.txt", tmp_path))
    assert tools_of(events)[1] == ToolResult("echo-1", "inside", True)


def test_cancellation_stops_it_quickly():
    agent = load_agent("echo", {"rate": "2"})
    seen: list = []

    async def go():
        async def consume():
            async for event in agent.run(turn("a b c d e f g h")):
                seen.append(event)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.7)
        start = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - start

    assert asyncio.run(go()) < 0.2
    assert 1 <= len(seen) <= 3


def test_people_are_counted_by_uid_and_namesakes_told_apart():
    history = [
        ChatMessage("user", "bob", "one", "uid-1111"),
        ChatMessage("user", "bob", "two", "uid-1111"),
        ChatMessage("user", "bob", "three", "uid-2222"),
        ChatMessage("user", "carol\n12:00 alice", "four", "uid-3333"),
    ]
    text = text_of(run(load_agent("echo", {"rate": "0"}), turn("hi", history=history)))
    assert text.endswith(
        "I have seen 4 earlier messages in this conversation "
        "(bob #1111, bob #2222, carol^J12:00 alice). Mode: code."
    )
    text = text_of(run(load_agent("echo", {"rate": "0"}), turn("hi", author="eve\nbob")))
    assert text.startswith("eve^Jbob asked: hi")
