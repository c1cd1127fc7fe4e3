"""`decode_jwt` checks the tokens we sign itself (the vote path decodes a ballot on every vote): it must
refuse everything PyJWT's `jwt.decode` refuses, and accept the tokens we sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest

from stagevote.core.security import InvalidToken, decode_jwt

SECRET = "s" * 64


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed_raw(payload: Any, secret: str = SECRET) -> str:
    """A token with our header and any JSON payload, signed with `secret`."""
    signing_input = _b64(b'{"alg":"HS256","typ":"JWT"}') + "." + _b64(json.dumps(payload).encode())
    return signing_input + "." + _b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"att": 1, "evt": 2, "typ": "ballot", "iat": now, "exp": now + 3600}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _pyjwt_accepts(token: str) -> bool:
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp", "iat", "typ"]})
    except jwt.PyJWTError:
        return False
    return claims.get("typ") == "ballot"


def _ours_accepts(token: str) -> bool:
    try:
        decode_jwt(token, secret=SECRET, purpose="ballot")
    except InvalidToken:
        return False
    return True


valid = jwt.encode(_claims(), SECRET, algorithm="HS256")
header, payload, signature = valid.split(".")
CASES = {
    "valid": valid,
    "valid, float exp": jwt.encode(_claims(exp=time.time() + 3600), SECRET, algorithm="HS256"),
    "another key": jwt.encode(_claims(), "another-secret-" + "x" * 40, algorithm="HS256"),
    "payload changed": f"{header}.{_b64(json.dumps(_claims(att=2)).encode())}.{signature}",
    "signature cut": f"{header}.{payload}.{signature[:-4]}",
    "signature not base64": f"{header}.{payload}.***",
    "no signature": f"{header}.{payload}",
    "four segments": f"{header}.{payload}.{payload}.{signature}",
    "expired": jwt.encode(_claims(exp=int(time.time()) - 1), SECRET, algorithm="HS256"),
    "issued in the future": jwt.encode(_claims(iat=int(time.time()) + 600), SECRET, algorithm="HS256"),
    "not before the future": jwt.encode(_claims(nbf=int(time.time()) + 600), SECRET, algorithm="HS256"),
    "no exp": jwt.encode(_claims(exp=None), SECRET, algorithm="HS256"),
    "no iat": jwt.encode(_claims(iat=None), SECRET, algorithm="HS256"),
    "no typ": jwt.encode(_claims(typ=None), SECRET, algorithm="HS256"),
    "another purpose": jwt.encode(_claims(typ="access"), SECRET, algorithm="HS256"),
    "exp a string": _signed_raw(_claims(exp="9999999999")),
    "exp true": _signed_raw(_claims(exp=True)),
    "payload a list": _signed_raw([1, 2, 3]),
    "payload not json": f"{header}.{_b64(b'not json')}.{signature}",
    "alg none": jwt.encode(_claims(), None, algorithm="none"),
    "HS512": jwt.encode(_claims(), SECRET, algorithm="HS512"),
    "empty": "",
    "garbage": "not-a-token",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_decode_jwt_accepts_nothing_pyjwt_refuses(case: str) -> None:
    token = CASES[case]
    if _ours_accepts(token):
        assert _pyjwt_accepts(token), case
    # only where we are stricter (a claim that is a number written as a string) may the two differ
    assert _ours_accepts(token) is _pyjwt_accepts(token) or case == "exp a string"


def test_the_valid_cases_are_accepted_with_their_claims() -> None:
    assert decode_jwt(valid, secret=SECRET, purpose="ballot") == jwt.decode(valid, SECRET, algorithms=["HS256"])
    assert [c for c in CASES if _ours_accepts(CASES[c])] == ["valid", "valid, float exp"]
