"""Every row of the rules-language table in docs/RULES-LANGUAGE.md, over real HTTP.

Each row's expression is loaded as the ``.read`` rule at ``/t/$color`` with
``PUT /.settings/rules.json``; a refused row must get a 400 naming the problem,
an accepted one is judged by reading ``/t/blue`` as the row's person (admin
credentials with ``auth_variable_override``, the documented way), once with the
expression and once with ``!(expression)`` to tell ``false`` from an error.
With ``--emulator=external`` the rows run against that emulator; only the
message text is then not compared.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.external import wanted
from tests.support.rtdb import RawRtdb

DOC = Path(__file__).resolve().parents[2] / "docs" / "RULES-LANGUAGE.md"
START = "<!-- rules-reference-table"
END = "<!-- end of rules-reference-table -->"

DATA = {
    "blue": {
        "name": "Ada",
        "age": 36,
        "pi": 3.5,
        "flag": True,
        "nested": {"deep": "v"},
        "prio": {".value": "p", ".priority": 5},
    }
}
PEOPLE: dict[str, Any] = {
    "signed out": None,
    "bob": {
        "uid": "bob",
        "provider": "custom",
        "someInt": 1,
        "someString": "one",
        "someBool": True,
        "foo": {"bar": True},
        "token": {"email": "bob@example.com", "email_verified": True},
    },
}


@dataclass(frozen=True)
class Row:
    expression: str
    person: str
    query: str
    refused: str | None  # the message fragment, when the load refuses the rule
    value: str | None  # "true", "false" or "error" for accepted rows
    basis: str


def _cells(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
    return [cell.strip().replace("\\|", "|") for cell in cells]


def _code(cell: str) -> str:
    assert cell.startswith("`") and cell.endswith("`"), cell
    return cell[1:-1]


def rows() -> list[Row]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index(START) : text.index(END)].splitlines()[1:]
    out = []
    for line in table[2:]:  # after the header and its rule
        expression, context, load, run, basis = _cells(line)
        person, _, query = context.partition(", ")
        refused = _code(load.removeprefix("refused: ")) if load.startswith("refused") else None
        assert refused is not None or load == "accepted", line
        assert (run == "—") == (refused is not None), line
        assert person in PEOPLE and basis in ("recorded", "reference", "ours"), line
        out.append(
            Row(
                _code(expression),
                person,
                _code(query) if query else "",
                refused,
                None if refused else run,
                basis,
            )
        )
    return out


ROWS = rows()


def test_the_table_is_whole() -> None:
    assert len(ROWS) >= 150
    assert {r.value for r in ROWS} == {"true", "false", "error", None}
    # no expression is listed twice for the same person and query
    keys = [(r.expression, r.person, r.query) for r in ROWS]
    assert len(keys) == len(set(keys))


def _load(raw: RawRtdb, expression: str) -> requests.Response:
    rules = {
        "rules": {
            "t": {"$color": {".read": expression, ".indexOn": [".value", "name", "nested/deep"]}}
        }
    }
    return raw.http.put(
        f"{raw.base}/.settings/rules.json",
        params={"ns": raw.ns},
        data=json.dumps(rules),
        headers={"Authorization": "Bearer owner"},
        timeout=10,
    )


def _granted(raw: RawRtdb, row: Row) -> bool:
    params = {"ns": raw.ns, "auth_variable_override": json.dumps(PEOPLE[row.person])}
    for pair in filter(None, row.query.split("&")):
        key, _, value = pair.partition("=")
        params[key] = value
    r = raw.http.get(
        f"{raw.base}/t/blue.json",
        params=params,
        headers={"Authorization": "Bearer owner"},
        timeout=10,
    )
    assert r.status_code in (200, 401), (row, r.status_code, r.text)
    return r.status_code == 200


@pytest.fixture(scope="module")
def db(emulator: Any) -> RawRtdb:
    raw = RawRtdb(f"http://{emulator.database_host}", "rules-language-reference")
    assert raw.owner().put("t", DATA).status_code == 200
    return raw


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.expression}|{r.person}|{r.query}" for r in ROWS])
def test_row(db: RawRtdb, row: Row, request: pytest.FixtureRequest) -> None:
    loaded = _load(db, row.expression)
    if row.refused is not None:
        assert loaded.status_code == 400, f"loaded, but Firebase refuses: {row.expression}"
        if not wanted(request.config):
            error = loaded.json()["error"]
            assert row.refused in error, error
            assert re.match(r"^Line 1, column \d+: ", error), error
        return
    assert loaded.status_code == 200, loaded.text
    granted = _granted(db, row)
    if row.value == "true":
        assert granted, f"{row.expression} should be true for {row.person}"
        return
    assert not granted, f"{row.expression} should be {row.value} for {row.person}"
    assert _load(db, f"!({row.expression})").status_code == 200
    negated = _granted(db, row)
    if row.value == "false":
        assert negated, f"{row.expression} errors, but should be false"
    else:
        assert not negated, f"{row.expression} is false, but should be an error"
