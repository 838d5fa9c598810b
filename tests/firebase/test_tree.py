"""The mirror's tree helpers: normal form and copy-on-write edits."""

from __future__ import annotations

from emdash_fb.firebase.tree import get_at, normalize, set_at, split_path, url_path


def test_split_and_url_path() -> None:
    assert split_path("") == () and split_path("/") == ()
    assert split_path("/a//b/") == ("a", "b")
    assert url_path("a b/ü/q?x") == "a%20b/%C3%BC/q%3Fx"


def test_normalize_arrays_nulls_and_empties() -> None:
    assert normalize(["a", None, "c"]) == {"0": "a", "2": "c"}
    assert normalize({"x": {"y": None}, "z": [], "k": {"0": [1]}}) == {"k": {"0": {"0": 1}}}
    assert normalize({}) is None and normalize(None) is None
    assert normalize(0) == 0 and normalize(False) is False and normalize("") == ""


def test_set_at_copies_only_the_changed_path() -> None:
    root = {"a": {"x": 1}, "b": {"big": list(range(3))}}
    new = set_at(root, ("a", "y"), 2)
    assert new == {"a": {"x": 1, "y": 2}, "b": {"big": [0, 1, 2]}}
    assert root == {"a": {"x": 1}, "b": {"big": [0, 1, 2]}}  # untouched
    assert new["b"] is root["b"]  # shared, not copied
    assert new["a"] is not root["a"]


def test_set_at_deletes_and_prunes_empty_parents() -> None:
    root = {"a": {"b": {"c": 1}}, "d": 2}
    assert set_at(root, ("a", "b", "c"), None) == {"d": 2}
    assert set_at({"a": {"b": 1}}, ("a", "b"), None) is None
    assert set_at(root, ("nope", "x"), None) is root
    assert set_at("leaf", ("x",), None) == "leaf"


def test_set_at_replaces_leaves_and_roots() -> None:
    assert set_at("leaf", ("x",), 1) == {"x": 1}
    assert set_at({"a": 1}, (), {"b": 2}) == {"b": 2}
    assert set_at(None, ("a", "b"), 1) == {"a": {"b": 1}}


def test_get_at() -> None:
    root = {"a": {"b": 1}}
    assert get_at(root, ("a", "b")) == 1
    assert get_at(root, ("a", "b", "c")) is None
    assert get_at(root, ()) is root
