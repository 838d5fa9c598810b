"""ID tokens: minting like the official Auth emulator, reading any Firebase ID token."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from emdash_fb.emulator.idtoken import (
    CLOCK_SKEW_SECONDS,
    TokenError,
    decode_id_token,
    mint_id_token,
    read_jwt,
    rtdb_provider,
)

PROJECT = "demo-emdash"
NOW = 1_800_000_000


def _segment(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict:
    return read_jwt(token)[1]


def test_minted_token_is_an_unsigned_jwt_with_the_official_header() -> None:
    token = mint_id_token(project_id=PROJECT, uid="alice", provider="anonymous", now=NOW)
    header_part, payload_part, signature = token.split(".")
    assert signature == ""
    assert "=" not in header_part + payload_part
    assert json.loads(base64.urlsafe_b64decode(header_part + "==")) == {
        "alg": "none",
        "typ": "JWT",
    }


def test_anonymous_token_claims_match_the_official_emulator() -> None:
    token = mint_id_token(project_id=PROJECT, uid="alice", provider="anonymous", now=NOW)
    assert _claims(token) == {
        "provider_id": "anonymous",
        "auth_time": NOW,
        "user_id": "alice",
        "firebase": {"identities": {}, "sign_in_provider": "anonymous"},
        "iat": NOW,
        "exp": NOW + 3600,
        "aud": PROJECT,
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "sub": "alice",
    }


def test_password_token_carries_email_name_and_identities() -> None:
    token = mint_id_token(
        project_id=PROJECT,
        uid="bob",
        provider="password",
        email="bob@example.com",
        name="Bob",
        picture="http://x/p.png",
        now=NOW,
        auth_time=NOW - 10,
    )
    claims = _claims(token)
    assert list(claims) == [
        "name",
        "picture",
        "email",
        "email_verified",
        "auth_time",
        "user_id",
        "firebase",
        "iat",
        "exp",
        "aud",
        "iss",
        "sub",
    ]
    assert claims["email"] == "bob@example.com"
    assert claims["email_verified"] is False
    assert claims["name"] == "Bob"
    assert claims["auth_time"] == NOW - 10
    assert claims["firebase"] == {
        "identities": {"email": ["bob@example.com"]},
        "sign_in_provider": "password",
    }


def test_custom_claims_sit_at_the_top_level_and_lifetime_sets_exp() -> None:
    token = mint_id_token(
        project_id=PROJECT,
        uid="carol",
        provider="custom",
        claims={"role": "admin", "level": 3},
        now=NOW,
        lifetime=60,
    )
    claims = _claims(token)
    assert claims["role"] == "admin" and claims["level"] == 3
    assert claims["exp"] == NOW + 60
    assert "provider_id" not in claims


@pytest.mark.parametrize("reserved", ["sub", "firebase", "iat", "auth_time", "aud"])
def test_reserved_custom_claims_are_refused(reserved: str) -> None:
    with pytest.raises(ValueError, match=reserved):
        mint_id_token(project_id=PROJECT, uid="u", provider="custom", claims={reserved: 1})


def test_round_trip_gives_the_rtdb_auth_variable() -> None:
    token = mint_id_token(
        project_id=PROJECT,
        uid="alice",
        provider="password",
        email="a@example.com",
        claims={"team": "red"},
        now=NOW,
    )
    auth = decode_id_token(token, now=NOW + 5, project_id=PROJECT)
    assert auth["uid"] == "alice"
    assert auth["provider"] == "password"
    assert auth["token"] == _claims(token)
    assert auth["token"]["team"] == "red"
    assert auth["token"]["email"] == "a@example.com"


def test_decode_defaults_to_the_current_time() -> None:
    fresh = mint_id_token(project_id=PROJECT, uid="u", provider="anonymous")
    assert decode_id_token(fresh)["uid"] == "u"
    stale = mint_id_token(project_id=PROJECT, uid="u", provider="anonymous", now=time.time() - 7200)
    with pytest.raises(TokenError, match="expired"):
        decode_id_token(stale)


@pytest.mark.parametrize(
    ("sign_in_provider", "rtdb_name"),
    [
        ("anonymous", "anonymous"),
        ("password", "password"),
        ("custom", "custom"),
        ("phone", "phone"),
        ("google.com", "google"),
        ("facebook.com", "facebook"),
        ("github.com", "github"),
        ("twitter.com", "twitter"),
        ("apple.com", "apple.com"),
    ],
)
def test_provider_is_named_the_way_rtdb_rules_see_it(sign_in_provider: str, rtdb_name: str) -> None:
    token = mint_id_token(project_id=PROJECT, uid="u", provider=sign_in_provider, now=NOW)
    assert decode_id_token(token, now=NOW)["provider"] == rtdb_name


@pytest.mark.parametrize("firebase_claim", [None, {}, {"sign_in_provider": ""}, "text"])
def test_token_without_a_sign_in_provider_counts_as_custom(firebase_claim: object) -> None:
    claims = {"sub": "u"} if firebase_claim is None else {"sub": "u", "firebase": firebase_claim}
    assert rtdb_provider(claims) == "custom"
    token = f"{_segment({'alg': 'none'})}.{_segment(claims)}."
    assert decode_id_token(token)["provider"] == "custom"


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.###.",
        f"{_segment({'alg': 'none'})}.not-base64-json.",
        f"{_segment([1, 2])}.{_segment({'sub': 'u'})}.",
        f"{_segment({'alg': 'none'})}.{_segment(['sub'])}.",
        f"{_segment({'alg': 'none'})}.{_segment('text')}.",
        "é.é.é",
    ],
)
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(TokenError):
        decode_id_token(garbage, now=NOW)


@pytest.mark.parametrize("not_a_string", [None, 123, b"a.b.c"])
def test_non_string_is_refused(not_a_string: object) -> None:
    with pytest.raises(TokenError):
        decode_id_token(not_a_string, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "claims", [{}, {"sub": ""}, {"sub": 42}, {"sub": None}, {"user_id": "u"}, {"sub": "x" * 129}]
)
def test_missing_or_bad_sub_is_refused(claims: dict) -> None:
    token = f"{_segment({'alg': 'none'})}.{_segment(claims)}."
    with pytest.raises(TokenError, match="sub"):
        decode_id_token(token, now=NOW)


def test_expired_token_is_refused_beyond_the_clock_skew() -> None:
    token = mint_id_token(project_id=PROJECT, uid="u", provider="anonymous", now=NOW)
    expires_at = NOW + 3600
    assert decode_id_token(token, now=expires_at + CLOCK_SKEW_SECONDS)["uid"] == "u"
    with pytest.raises(TokenError, match="expired"):
        decode_id_token(token, now=expires_at + CLOCK_SKEW_SECONDS + 1)


@pytest.mark.parametrize("exp", ["soon", None, True, [1]])
def test_non_numeric_exp_is_refused(exp: object) -> None:
    token = f"{_segment({'alg': 'none'})}.{_segment({'sub': 'u', 'exp': exp})}."
    with pytest.raises(TokenError, match="exp"):
        decode_id_token(token, now=NOW)


def test_token_without_exp_does_not_expire() -> None:
    token = f"{_segment({'alg': 'none'})}.{_segment({'sub': 'u'})}."
    assert decode_id_token(token, now=NOW * 2)["uid"] == "u"


def test_project_check_compares_audience_and_issuer() -> None:
    token = mint_id_token(project_id=PROJECT, uid="u", provider="anonymous", now=NOW)
    assert decode_id_token(token, now=NOW, project_id=PROJECT)["uid"] == "u"
    with pytest.raises(TokenError, match="audience"):
        decode_id_token(token, now=NOW, project_id="demo-other")
    claims = {**_claims(token), "iss": "https://securetoken.google.com/demo-other"}
    forged = f"{_segment({'alg': 'none'})}.{_segment(claims)}."
    with pytest.raises(TokenError, match="issuer"):
        decode_id_token(forged, now=NOW, project_id=PROJECT)


def test_signed_rs256_token_is_accepted_without_verifying_the_signature() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "iss": f"https://securetoken.google.com/{PROJECT}",
        "aud": PROJECT,
        "sub": "prod-user",
        "user_id": "prod-user",
        "iat": NOW,
        "exp": NOW + 3600,
        "auth_time": NOW,
        "firebase": {"identities": {"google.com": ["123"]}, "sign_in_provider": "google.com"},
    }
    token = pyjwt.encode(claims, key, algorithm="RS256", headers={"kid": "key-1"})
    auth = decode_id_token(token, now=NOW, project_id=PROJECT)
    assert auth == {"uid": "prod-user", "provider": "google", "token": claims}
    # A tampered signature changes nothing: the emulator never verifies.
    tampered = token.rsplit(".", 1)[0] + ".AAAA"
    assert decode_id_token(tampered, now=NOW)["uid"] == "prod-user"


def test_read_jwt_returns_header_and_payload() -> None:
    token = mint_id_token(project_id=PROJECT, uid="u", provider="custom", now=NOW)
    header, payload = read_jwt(token)
    assert header == {"alg": "none", "typ": "JWT"}
    assert payload["sub"] == "u"
