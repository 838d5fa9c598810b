"""Target resolution: environment variables, the XDG config file, emulator variables, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emdash_fb.firebase.errors import ConfigError
from emdash_fb.firebase.target import Target, config_dir, resolve_target

WEB_CONFIG = {
    "apiKey": "AIzaFileKey1234567890",
    "authDomain": "filepro.firebaseapp.com",
    "databaseURL": "https://filepro-default-rtdb.firebaseio.com",
    "projectId": "filepro",
    "storageBucket": "filepro.appspot.com",
}


def write_config(tmp_path: Path, data: object) -> dict[str, str]:
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    path = config_dir(env) / "config.json"
    path.parent.mkdir(parents=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return env


def test_config_dir_prefers_xdg_then_home(tmp_path: Path) -> None:
    assert config_dir({"XDG_CONFIG_HOME": "/x/cfg", "HOME": "/h"}) == Path("/x/cfg/emdash-fb")
    assert config_dir({"HOME": "/h"}) == Path("/h/.config/emdash-fb")
    assert config_dir({"XDG_CONFIG_HOME": "", "HOME": "/h"}) == Path("/h/.config/emdash-fb")


def test_env_vars_alone(tmp_path: Path) -> None:
    target = resolve_target(
        {
            "XDG_CONFIG_HOME": str(tmp_path),
            "EMDASH_FB_API_KEY": "AIzaEnvKey",
            "EMDASH_FB_DATABASE_URL": "https://envpro-default-rtdb.europe-west1.firebasedatabase.app/",
            "EMDASH_FB_PROJECT_ID": "envpro",
        }
    )
    assert target == Target(
        "envpro",
        "AIzaEnvKey",
        "https://envpro-default-rtdb.europe-west1.firebasedatabase.app",
        None,
        None,
    )
    assert not target.is_emulator


def test_config_file_is_a_firebase_web_config(tmp_path: Path) -> None:
    target = resolve_target(write_config(tmp_path, WEB_CONFIG))
    assert target.project_id == "filepro"
    assert target.api_key == "AIzaFileKey1234567890"
    assert target.database_url == "https://filepro-default-rtdb.firebaseio.com"
    assert target.database_emulator is None and target.auth_emulator is None


def test_env_vars_override_the_file_one_by_one(tmp_path: Path) -> None:
    env = write_config(tmp_path, WEB_CONFIG)
    target = resolve_target({**env, "EMDASH_FB_API_KEY": "AIzaOverride"})
    assert target.api_key == "AIzaOverride"
    assert target.database_url == WEB_CONFIG["databaseURL"]
    assert target.project_id == "filepro"


def test_project_id_derived_from_database_url(tmp_path: Path) -> None:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "EMDASH_FB_API_KEY": "k",
        "EMDASH_FB_DATABASE_URL": "https://myproj-default-rtdb.firebaseio.com",
    }
    assert resolve_target(env).project_id == "myproj"


def test_database_emulator_variable(tmp_path: Path) -> None:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "FIREBASE_DATABASE_EMULATOR_HOST": "127.0.0.1:9000",
        "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099",
    }
    target = resolve_target(env)
    assert target == Target(
        "demo-emdash", "fake-api-key", "http://127.0.0.1:9000", "127.0.0.1:9000", "127.0.0.1:9099"
    )
    assert target.is_emulator
    assert resolve_target({**env, "GCLOUD_PROJECT": "demo-g"}).project_id == "demo-g"
    both = {**env, "GCLOUD_PROJECT": "demo-g", "EMDASH_FB_PROJECT_ID": "demo-e"}
    assert resolve_target(both).project_id == "demo-e"


def test_emulator_never_reads_the_production_config(tmp_path: Path) -> None:
    env = write_config(tmp_path, WEB_CONFIG)
    env["FIREBASE_DATABASE_EMULATOR_HOST"] = "localhost:9000"
    env["FIREBASE_AUTH_EMULATOR_HOST"] = "localhost:9099"
    target = resolve_target(env)
    assert target.project_id == "demo-emdash"
    assert target.api_key == "fake-api-key"
    assert target.database_url == "http://localhost:9000"


def test_database_emulator_without_auth_emulator_needs_a_key(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "FIREBASE_DATABASE_EMULATOR_HOST": "127.0.0.1:9000"}
    with pytest.raises(ConfigError, match="FIREBASE_AUTH_EMULATOR_HOST"):
        resolve_target(env)
    target = resolve_target({**env, "EMDASH_FB_API_KEY": "AIzaReal"})
    assert target.api_key == "AIzaReal" and target.auth_emulator is None


def test_missing_config_names_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_target({"XDG_CONFIG_HOME": str(tmp_path)})
    text = str(caught.value)
    assert "EMDASH_FB_DATABASE_URL" in text and "EMDASH_FB_API_KEY" in text
    assert str(tmp_path / "emdash-fb" / "config.json") in text
    assert "\n" not in text


def test_missing_api_key_only(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "EMDASH_FB_DATABASE_URL": "https://x.firebaseio.com"}
    with pytest.raises(ConfigError) as caught:
        resolve_target(env)
    assert "EMDASH_FB_API_KEY" in str(caught.value)
    assert "EMDASH_FB_DATABASE_URL" not in str(caught.value).split("or save")[0]


@pytest.mark.parametrize(
    "bad",
    ["{not json", "[1, 2]"],
)
def test_unreadable_config_file(tmp_path: Path, bad: str) -> None:
    env = write_config(tmp_path, bad)
    with pytest.raises(ConfigError, match="config.json"):
        resolve_target(env)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.firebaseio.com",
        "x.firebaseio.com",
        "http://127.0.0.1:9000/?ns=foo",
        "https://x.com/a",
    ],
)
def test_bad_database_url(tmp_path: Path, url: str) -> None:
    env = {
        "XDG_CONFIG_HOME": str(tmp_path),
        "EMDASH_FB_API_KEY": "k",
        "EMDASH_FB_DATABASE_URL": url,
    }
    with pytest.raises(ConfigError, match="database URL"):
        resolve_target(env)


def test_bad_emulator_host(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path), "FIREBASE_DATABASE_EMULATOR_HOST": "not a host"}
    with pytest.raises(ConfigError, match="host:port"):
        resolve_target(env)
    env["FIREBASE_DATABASE_EMULATOR_HOST"] = "http://127.0.0.1:9000/"
    env["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099"
    assert resolve_target(env).database_url == "http://127.0.0.1:9000"


def test_describe_is_one_line_and_masks_the_key(tmp_path: Path) -> None:
    prod = resolve_target(write_config(tmp_path, WEB_CONFIG))
    line = prod.describe()
    assert "filepro" in line and WEB_CONFIG["databaseURL"] in line
    assert WEB_CONFIG["apiKey"] not in line and "\n" not in line
    emu = Target("demo-x", "fake-api-key", "http://h:1", "h:1", "h:2")
    assert "emulator" in emu.describe() and "h:2" in emu.describe()


def test_target_key_separates_projects_and_emulators() -> None:
    a = Target("p", "k", "http://h:1", "h:1", "h:2")
    b = Target("p", "k", "https://p.firebaseio.com", None, None)
    c = Target("q", "k", "http://h:1", "h:1", "h:2")
    assert len({a.key, b.key, c.key}) == 3
