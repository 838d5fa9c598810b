"""Files sent with a message: metadata in the message, data outside the session tree."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from emdash_fb.session import attachments
from tests.rules import model
from tests.rules.world import Team, denied, ok

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


def body(
    t: Team, files: list[tuple[dict, dict]], who: str = "bob", text: str = "look"
) -> tuple[str, dict]:
    mid = model.push_id()
    user = getattr(t, who)
    slot = t.world.free_slot(t.s, user)
    return mid, model.send_with_attachments(
        user.uid, user.name, t.s.sid, mid, text, files, slot=slot
    )


def test_send_with_attachments_and_who_reads_them(team: Team) -> None:
    files = [
        model.attachment("shot.png", "image/png", PNG),
        model.attachment("notes.txt", "text/plain", b"hi\n"),
    ]
    mid, b = body(team, files)
    ok(team.bob.update(b))
    meta = team.world.value(team.s.path(f"transcript/{mid}/attachments"))
    assert meta["a0"] == {"name": "shot.png", "type": "image/png", "size": len(PNG)}
    # the session tree carries no file data
    assert "data" not in meta["a0"]
    ok(team.alice.get(f"attachments/{team.s.sid}/{mid}"))
    ok(team.carol.get(f"attachments/{team.s.sid}/{mid}"))  # a viewer is a member too
    ok(team.runner.get(f"attachments/{team.s.sid}/{mid}"))
    denied(team.eve.get(f"attachments/{team.s.sid}/{mid}"))
    denied(team.world.nobody.get(f"attachments/{team.s.sid}/{mid}"))
    # never changed afterwards, not even by the author
    denied(team.bob.put(f"attachments/{team.s.sid}/{mid}/a0", files[1][1]))
    denied(team.bob.delete(f"attachments/{team.s.sid}/{mid}/a0"))


def _meta_edit(b: dict, mid: str, sid: str, key: str, **fields: Any) -> dict:
    path = f"sessions/{sid}/transcript/{mid}"
    message = dict(b[path])
    message["attachments"] = {
        **message["attachments"],
        key: {**message["attachments"][key], **fields},
    }
    return {**b, path: message}


def _data_edit(b: dict, mid: str, sid: str, key: str, **fields: Any) -> dict:
    path = f"attachments/{sid}/{mid}/{key}"
    return {**b, path: {**b[path], **fields}}


BIG = b"\x89PNG\r\n\x1a\n" + b"\x00" * attachments.MAX_BYTES
ATTACKS: list[tuple[str, Any]] = [
    ("size-mismatch", lambda b, m, s: _meta_edit(b, m, s, "a0", size=5)),
    ("name-mismatch", lambda b, m, s: _meta_edit(b, m, s, "a0", name="other.png")),
    ("type-mismatch", lambda b, m, s: _meta_edit(b, m, s, "a0", type="image/gif")),
    ("html", lambda b, m, s: _data_edit(_meta_edit(b, m, s, "a0", type="text/html"), m, s, "a0", type="text/html")),
    ("slash-name", lambda b, m, s: _data_edit(_meta_edit(b, m, s, "a0", name="../x.png"), m, s, "a0", name="../x.png")),
    ("data-short-of-size", lambda b, m, s: _data_edit(b, m, s, "a0", data=base64.b64encode(PNG[:50]).decode())),
    ("no-data", lambda b, m, s: {k: v for k, v in b.items() if not k.startswith("attachments/")}),
    ("no-metadata", lambda b, m, s: {**b, f"sessions/{s}/transcript/{m}": {k: v for k, v in b[f"sessions/{s}/transcript/{m}"].items() if k != "attachments"}}),
    ("fifth-file", lambda b, m, s: {**_meta_edit({**b, f"sessions/{s}/transcript/{m}": {**b[f"sessions/{s}/transcript/{m}"], "attachments": {**b[f"sessions/{s}/transcript/{m}"]["attachments"], "a4": b[f"sessions/{s}/transcript/{m}"]["attachments"]["a0"]}}}, m, s, "a0"), f"attachments/{s}/{m}/a4": b[f"attachments/{s}/{m}/a0"]}),
    ("extra-field", lambda b, m, s: _data_edit(b, m, s, "a0", path="/etc/passwd")),
]  # fmt: skip


@pytest.mark.parametrize("attack", [a for _, a in ATTACKS], ids=[n for n, _ in ATTACKS])
def test_attachment_attacks_refused(team: Team, attack: Any) -> None:
    mid, b = body(team, [model.attachment("shot.png", "image/png", PNG)])
    denied(team.bob.update(attack(b, mid, team.s.sid)))
    ok(team.bob.update(b))  # the honest send still goes through


def test_too_big_refused(team: Team) -> None:
    mid, b = body(team, [model.attachment("big.png", "image/png", BIG)])
    denied(team.bob.update(b))


def test_largest_allowed(team: Team) -> None:
    mid, b = body(team, [model.attachment("big.png", "image/png", BIG[: attachments.MAX_BYTES])])
    ok(team.bob.update(b))


def test_no_attaching_to_an_existing_or_someone_elses_message(team: Team) -> None:
    meta, record = model.attachment("shot.png", "image/png", PNG)
    sid = team.s.sid
    # afterwards, to one's own message
    denied(
        team.bob.update(
            {
                f"sessions/{sid}/transcript/{team.queued}/attachments/a0": meta,
                f"attachments/{sid}/{team.queued}/a0": record,
            }
        )
    )
    # data for someone else's new message
    mid, b = body(team, [], who="dave")
    ok(team.dave.update(b))
    denied(team.bob.put(f"attachments/{sid}/{mid}/a0", record))
    # a viewer can't send at all, attachments or not
    mid, b = body(team, [(meta, record)], who="carol")
    denied(team.carol.update(b))
