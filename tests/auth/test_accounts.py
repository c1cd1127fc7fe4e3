"""Signup, login, profile, refresh rotation and reuse detection, logout."""

from __future__ import annotations

import datetime as dt

from httpx import AsyncClient

from stagevote.core.runtime import Runtime
from tests.conftest import PASSWORD, Actor
from tests.http import ok
from tests.tokens import ANOTHER_KEY, alg_none_keeping_signature, clock_moved, each_claim_dropped, resigned, unsigned


async def signup(client: AsyncClient, email: str = "ada@example.com", **extra: object) -> dict[str, object]:
    r = await client.post("/auth/signup", json={"email": email, "password": PASSWORD, **extra})
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def bearer(token: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_signup_returns_a_token_pair_and_a_fan(client: AsyncClient) -> None:
    body = await signup(client, "Ada@Example.com", languagePref="es")
    assert body["tokenType"] == "bearer"
    assert body["expiresIn"] == 15 * 60
    user = body["user"]
    assert isinstance(user, dict)
    assert user["email"] == "ada@example.com"
    assert user["role"] == "fan"
    assert user["languagePref"] == "es"
    assert set(user) == {"id", "email", "role", "languagePref", "createdAt"}
    profile = await client.get("/auth/profile", headers=bearer(body["accessToken"]))
    assert profile.status_code == 200
    assert profile.json() == user


async def test_signup_sending_a_role_still_gets_a_fan(client: AsyncClient) -> None:
    body = await signup(client, role="admin")
    assert isinstance(body["user"], dict)
    assert body["user"]["role"] == "fan"


async def test_signup_with_a_taken_email_is_409_in_any_case(client: AsyncClient) -> None:
    await signup(client, "ada@example.com")
    r = await client.post("/auth/signup", json={"email": "ADA@example.com", "password": PASSWORD})
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"


async def test_signup_rejects_bad_input_field_by_field(client: AsyncClient) -> None:
    r = await client.post("/auth/signup", json={"email": "not-an-email", "password": "short"})
    assert r.status_code == 422
    problem = r.json()
    assert problem["status"] == 422
    assert {e["field"] for e in problem["errors"]} == {"email", "password"}


async def test_login_and_bad_credentials(client: AsyncClient) -> None:
    await signup(client)
    ok = await client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert ok.status_code == 200
    assert ok.json()["user"]["email"] == "ada@example.com"
    wrong = await client.post("/auth/login", json={"email": "ada@example.com", "password": "nope-nope"})
    assert wrong.status_code == 401
    unknown = await client.post("/auth/login", json={"email": "bob@example.com", "password": PASSWORD})
    assert unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"]  # no hint which accounts exist


async def test_login_is_rate_limited_per_account_with_retry_after(client: AsyncClient, runtime: Runtime) -> None:
    await signup(client)
    limit = int(runtime.settings.login_rate_per_account.split("/")[0])
    for _ in range(limit):
        r = await client.post("/auth/login", json={"email": "ada@example.com", "password": "wrong-wrong"})
        assert r.status_code == 401
    blocked = await client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) >= 1
    # another account from another address is not affected
    await signup(client, "bob@example.com")
    other = await client.post("/auth/login", json={"email": "bob@example.com", "password": PASSWORD})
    assert other.status_code == 200


async def test_login_is_rate_limited_per_ip(client: AsyncClient, runtime: Runtime) -> None:
    limit = int(runtime.settings.login_rate_per_ip.split("/")[0])
    for i in range(limit):
        r = await client.post("/auth/login", json={"email": f"u{i}@example.com", "password": "wrong-wrong"})
        assert r.status_code == 401
    r = await client.post("/auth/login", json={"email": "fresh@example.com", "password": "wrong-wrong"})
    assert r.status_code == 429
    assert "retry-after" in r.headers


async def test_refresh_rotates_and_a_reused_token_revokes_the_family(client: AsyncClient) -> None:
    first = await signup(client)
    second = await client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert second.status_code == 200
    pair = second.json()
    assert pair["refreshToken"] != first["refreshToken"]
    assert (await client.get("/auth/profile", headers=bearer(pair["accessToken"]))).status_code == 200

    # the spent token comes back: 401, and every token of the family dies with it
    reused = await client.post("/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert reused.status_code == 401
    assert (await client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})).status_code == 401
    assert (await client.get("/auth/profile", headers=bearer(pair["accessToken"]))).status_code == 401
    # a separate login is a separate family and still works
    other = await client.post("/auth/login", json={"email": "ada@example.com", "password": PASSWORD})
    assert (await client.post("/auth/refresh", json={"refreshToken": other.json()["refreshToken"]})).status_code == 200


async def test_refresh_with_garbage_is_401(client: AsyncClient) -> None:
    r = await client.post("/auth/refresh", json={"refreshToken": "svr_nonsense"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"


async def test_logout_kills_the_access_token_and_the_refresh_family_at_once(client: AsyncClient) -> None:
    pair = await signup(client)
    r = await client.post(
        "/auth/logout", json={"refreshToken": pair["refreshToken"]}, headers=bearer(pair["accessToken"])
    )
    assert r.status_code == 204
    assert (await client.get("/auth/profile", headers=bearer(pair["accessToken"]))).status_code == 401
    assert (await client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})).status_code == 401


async def test_logout_without_a_body_still_ends_the_family(client: AsyncClient) -> None:
    pair = await signup(client)
    assert (await client.post("/auth/logout", headers=bearer(pair["accessToken"]))).status_code == 204
    assert (await client.post("/auth/refresh", json={"refreshToken": pair["refreshToken"]})).status_code == 401


async def test_logout_needs_a_token(client: AsyncClient) -> None:
    assert (await client.post("/auth/logout")).status_code == 401


async def test_tampered_expired_and_alg_none_tokens_are_401(client: AsyncClient, runtime: Runtime, fan: Actor) -> None:
    # the harness's control: the same claims signed again with our key are accepted
    assert (
        await client.get("/auth/profile", headers=bearer(resigned(fan.token, runtime.secret_key.get_secret_value())))
    ).status_code == 200
    head, body, sig = fan.token.split(".")
    flipped = f"{head}.{body}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    refused = {
        "alg none": unsigned(fan.token),
        "alg none, signature kept": alg_none_keeping_signature(fan.token),
        "another key": resigned(fan.token, ANOTHER_KEY),
        "flipped signature": flipped,
        "garbage": "garbage",
    }
    for why, token in refused.items():
        r = await client.get("/auth/profile", headers=bearer(token))
        assert r.status_code == 401, why
        assert r.headers["www-authenticate"] == "Bearer"
    # a token missing one of its claims (even signed with our key) is refused, or still the same user: never a 500
    for name, token in each_claim_dropped(fan.token, runtime.secret_key.get_secret_value()):
        r = await client.get("/auth/profile", headers=bearer(token))
        assert r.status_code == 401 or (r.status_code == 200 and r.json()["id"] == fan.user_id), (name, r.text)
    assert (await client.get("/auth/profile", headers={"Authorization": "Basic abc"})).status_code == 401
    assert (await client.get("/auth/profile", headers=fan.headers)).status_code == 200
    with clock_moved(dt.timedelta(minutes=16)):  # expired
        assert (await client.get("/auth/profile", headers=fan.headers)).status_code == 401


async def test_access_tokens_live_fifteen_minutes(client: AsyncClient, fan: Actor) -> None:
    with clock_moved(dt.timedelta(minutes=14)):
        assert (await client.get("/auth/profile", headers=fan.headers)).status_code == 200
    with clock_moved(dt.timedelta(minutes=16)):
        assert (await client.get("/auth/profile", headers=fan.headers)).status_code == 401
        # the refresh token outlives it: a new pair, and the new access token works
        pair = ok(await client.post("/auth/refresh", json={"refreshToken": fan.refresh_token}))
        assert (await client.get("/auth/profile", headers=bearer(pair["accessToken"]))).status_code == 200
