"""Vote receipts: a short code per vote, an HMAC-SHA256 of the vote's facts keyed from the server's secret.

A receipt is the first 80 bits of HMAC-SHA256(key, facts), written in base32 without padding: 16
characters of `A-Z2-7`. The key is HMAC-SHA256(SECRET_KEY, "stagevote vote receipts"), so a receipt
cannot be forged or recomputed without the server's secret, and says nothing about the vote to whoever
holds it. The facts are what a vote row never changes once written: event, round, attendee, artist,
the client's vote token (unique: it stands in for the row id, which the group commit only learns after
the INSERT, and the receipt is written in that same INSERT) and the time it was cast.

Because the receipt is a function of those columns, the `stagevote audit verify` command recomputes it
from each row: a row whose artist (or any other fact) was changed behind the app's back gets a
different receipt, and so falls out of its round's sealed tree. Voiding a vote changes none of the
facts, so it never looks like tampering.

The receipt is stored in `votes.receipt` (unique), written by the vote's own INSERT, so that a fan's
look-up by code is one index read. Cost on the vote path: one HMAC per vote (the derived key is
computed once per secret, and an HMAC keyed with it is copied per vote rather than keyed anew), about
4 µs with the encoding: the base32 is written from a table of
two-character pairs rather than by `base64.b32encode` (pure Python in 3.11, and half the cost), with
the same result.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stagevote.voting.models import Vote

RECEIPT_BYTES = 10  # 80 bits: 16 base32 characters
RECEIPT_LENGTH = 16
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648
_PAIRS = tuple(_BASE32[n >> 5] + _BASE32[n & 31] for n in range(1024))  # ten bits → two characters


@functools.lru_cache(maxsize=4)
def receipt_key(secret_key: str) -> bytes:
    """The receipts' own key, derived from the server's secret (so it never signs anything else)."""
    return hmac.new(secret_key.encode(), b"stagevote vote receipts", hashlib.sha256).digest()


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed with the receipts' key, copied for each vote (the key's set-up done once)."""
    return hmac.new(receipt_key(secret_key), digestmod=hashlib.sha256)


def _instant(created_at: dt.datetime) -> str:
    moment = created_at if created_at.tzinfo is not None else created_at.replace(tzinfo=dt.UTC)
    if moment.tzinfo is not dt.UTC:  # the vote path's clock is in UTC already
        moment = moment.astimezone(dt.UTC)
    return moment.isoformat(timespec="microseconds")  # 2026-12-01T19:05:03.123456+00:00


def _base32(digest: bytes) -> str:
    """The first 80 bits of `digest` in base32 (RFC 4648, no padding), as `base64.b32encode` writes them."""
    n = int.from_bytes(digest[:RECEIPT_BYTES], "big")
    pairs = _PAIRS
    return (
        pairs[n >> 70]
        + pairs[(n >> 60) & 1023]
        + pairs[(n >> 50) & 1023]
        + pairs[(n >> 40) & 1023]
        + pairs[(n >> 30) & 1023]
        + pairs[(n >> 20) & 1023]
        + pairs[(n >> 10) & 1023]
        + pairs[n & 1023]
    )


def receipt_for(
    secret_key: str,
    *,
    event_id: int,
    round_number: int,
    attendee_id: int,
    artist_id: int,
    token: str,
    created_at: dt.datetime,
) -> str:
    """The receipt of a vote with these facts."""
    facts = f"v1|{event_id}|{round_number}|{attendee_id}|{artist_id}|{_instant(created_at)}|{token}"
    signer = _signer(secret_key).copy()
    signer.update(facts.encode())
    return _base32(signer.digest())


def receipt_of_row(secret_key: str, vote: Vote) -> str:
    """The receipt a vote row's facts give now (what it was given when cast, unless the row was changed)."""
    return receipt_for(
        secret_key,
        event_id=vote.event_id,
        round_number=vote.round,
        attendee_id=vote.attendee_id,
        artist_id=vote.artist_id,
        token=vote.token,
        created_at=vote.created_at,
    )


def normalized(code: str) -> str:
    """A receipt as a fan may type it back: any case, spaces or dashes between groups."""
    return code.strip().upper().replace(" ", "").replace("-", "")
