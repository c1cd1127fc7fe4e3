"""Vote receipts: a short code per vote, derived with the server's secret from the vote's row and its id.

A receipt is 80 bits written in base32 without padding: 16 characters of `A-Z2-7`. Version 2 (every
vote cast since migration 0012; `votes.receipt_version`) is

    tag    = BLAKE2b(key=key, digest 4 bytes) of "v2|id|event|round|attendee|artist|cast at|token"
             (cast at: microseconds since 1970-01-01 UTC)
    hidden = the vote's id (48 bits) XOR BLAKE2b(key=mask key, digest 6 bytes) of the tag
    code   = base32(tag || hidden)

with the keys derived from `SECRET_KEY` (HMAC-SHA256(SECRET_KEY, "stagevote vote receipts") and
"… receipt ids"), so a receipt cannot be forged or recomputed without the server's secret, and says
nothing about the vote (not even its id) to whoever holds it. The server reads the id back from a
code (`vote_id_of`), loads that one row by its primary key, and accepts the code only if the row gives
it again: a guessed code hits a vote with a chance of about (votes cast) / 2^80, as with an 80-bit HMAC.
A receipt is a function of the row, so it is never stored: the vote path's INSERT writes no column and
no index for it, and the answer computes it from the id the INSERT returned: two keyed BLAKE2b calls
(one C call each) and an integer time, ~2.5 µs, half what an HMAC object and an ISO time cost.

Version 1 (votes cast from migration 0006 to 0012) was the first 80 bits of HMAC-SHA256 over
"v1|event|round|attendee|artist|cast at|token", stored in `votes.receipt` (and looked up there, by a
partial unique index); its rows keep it. Votes cast before 0006 are version 1 without a stored code:
their receipts are recomputed for seals and the audit, and cannot be looked up.

The facts are what a vote row never changes once written, save a vote change (a new receipt): event,
round, attendee, artist, the client's vote token, the time it was cast, and for version 2 the id.
`stagevote audit verify` recomputes each receipt from its row: a row whose artist (or any other fact)
was changed behind the app's back gets a different receipt, and so falls out of its round's sealed
tree; its sealed receipt still reads back to its id, so the audit names it. Voiding a vote changes none
of the facts, so it never looks like tampering.
"""

from __future__ import annotations

import binascii
import datetime as dt
import functools
import hashlib
import hmac
from base64 import b32decode
from typing import Protocol

RECEIPT_BYTES = 10  # 80 bits: 16 base32 characters
RECEIPT_LENGTH = 16
CURRENT_VERSION = 2  # what a vote cast now gets (the column's default); 1: stored in `votes.receipt`
_TAG_BITS = 32
_ID_BITS = 48  # room for ids far past a 32-bit serial
_ID_MASK = (1 << _ID_BITS) - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)
_BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # RFC 4648
_PAIRS = tuple(_BASE32[n >> 5] + _BASE32[n & 31] for n in range(1024))  # ten bits → two characters


class VoteFacts(Protocol):
    """What a receipt is derived from: a vote row, or the columns of one."""

    @property
    def id(self) -> int: ...
    @property
    def event_id(self) -> int: ...
    @property
    def round(self) -> int: ...
    @property
    def attendee_id(self) -> int: ...
    @property
    def artist_id(self) -> int: ...
    @property
    def token(self) -> str: ...
    @property
    def created_at(self) -> dt.datetime: ...
    @property
    def receipt_version(self) -> int: ...


@functools.lru_cache(maxsize=4)
def receipt_key(secret_key: str) -> bytes:
    """The receipts' own key, derived from the server's secret (so it never signs anything else)."""
    return hmac.new(secret_key.encode(), b"stagevote vote receipts", hashlib.sha256).digest()


@functools.lru_cache(maxsize=4)
def _signer(secret_key: str) -> hmac.HMAC:
    """HMAC-SHA256 keyed with the receipts' key, copied for each vote (the key's set-up done once)."""
    return hmac.new(receipt_key(secret_key), digestmod=hashlib.sha256)


@functools.lru_cache(maxsize=4)
def _id_key(secret_key: str) -> bytes:
    """The key that hides a vote's id in its version 2 receipt."""
    return hmac.new(secret_key.encode(), b"stagevote vote receipt ids", hashlib.sha256).digest()


def _id_mask(secret_key: str, tag: int) -> int:
    return int.from_bytes(
        hashlib.blake2b(tag.to_bytes(4, "big"), key=_id_key(secret_key), digest_size=_ID_BITS // 8).digest(), "big"
    )


def _micros(created_at: dt.datetime) -> int:
    """Microseconds since 1970-01-01 UTC (a naive time is read as UTC)."""
    moment = created_at if created_at.tzinfo is not None else created_at.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // _MICROSECOND


def _instant(created_at: dt.datetime) -> str:
    moment = created_at if created_at.tzinfo is not None else created_at.replace(tzinfo=dt.UTC)
    if moment.tzinfo is not dt.UTC:  # the vote path's clock is in UTC already
        moment = moment.astimezone(dt.UTC)
    return moment.isoformat(timespec="microseconds")  # 2026-12-01T19:05:03.123456+00:00


def _base32(digest: bytes) -> str:
    """The first 80 bits of `digest` in base32 (RFC 4648, no padding), as `base64.b32encode` writes them."""
    return _base32_of(int.from_bytes(digest[:RECEIPT_BYTES], "big"))


def _base32_of(n: int) -> str:
    """An 80-bit number in base32, 16 characters, from a table of two-character pairs (ten bits each)."""
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


def _version_1(
    secret_key: str,
    event_id: int,
    round_number: int,
    attendee_id: int,
    artist_id: int,
    token: str,
    created_at: dt.datetime,
) -> str:
    """A version 1 receipt: the first 80 bits of HMAC-SHA256 of the facts."""
    facts = f"v1|{event_id}|{round_number}|{attendee_id}|{artist_id}|{_instant(created_at)}|{token}"
    signer = _signer(secret_key).copy()
    signer.update(facts.encode())
    return _base32(signer.digest())


def _version_2(
    secret_key: str,
    vote_id: int,
    event_id: int,
    round_number: int,
    attendee_id: int,
    artist_id: int,
    token: str,
    created_at: dt.datetime,
) -> str:
    """A version 2 receipt: the facts' keyed tag, then the id under a mask keyed by the tag."""
    facts = f"v2|{vote_id}|{event_id}|{round_number}|{attendee_id}|{artist_id}|{_micros(created_at)}|{token}"
    digest = hashlib.blake2b(facts.encode(), key=receipt_key(secret_key), digest_size=_TAG_BITS // 8).digest()
    tag = int.from_bytes(digest, "big")
    return _base32_of(tag << _ID_BITS | ((vote_id ^ _id_mask(secret_key, tag)) & _ID_MASK))


def receipt_for(
    secret_key: str,
    *,
    vote_id: int,
    event_id: int,
    round_number: int,
    attendee_id: int,
    artist_id: int,
    token: str,
    created_at: dt.datetime,
) -> str:
    """The (version 2) receipt of the vote with this id and these facts."""
    return _version_2(secret_key, vote_id, event_id, round_number, attendee_id, artist_id, token, created_at)


def receipt_v1(
    secret_key: str,
    *,
    event_id: int,
    round_number: int,
    attendee_id: int,
    artist_id: int,
    token: str,
    created_at: dt.datetime,
) -> str:
    """The version 1 receipt of a vote with these facts (cast before migration 0012)."""
    return _version_1(secret_key, event_id, round_number, attendee_id, artist_id, token, created_at)


def receipt_of_row(secret_key: str, vote: VoteFacts) -> str:
    """The receipt a vote row gives now (what it was given when cast, unless the row was changed since)."""
    facts = (vote.event_id, vote.round, vote.attendee_id, vote.artist_id, vote.token, vote.created_at)
    if vote.receipt_version == 1:
        return _version_1(secret_key, *facts)
    return _version_2(secret_key, vote.id, *facts)


def vote_id_of(secret_key: str, code: str) -> int | None:
    """The vote id a (normalized) version 2 receipt names, if it is one; whether that vote gives this
    receipt is for the caller to check (`receipt_of_row`). None for what cannot be a receipt."""
    if len(code) != RECEIPT_LENGTH:
        return None
    try:
        n = int.from_bytes(b32decode(code), "big")
    except (binascii.Error, ValueError):
        return None
    tag = n >> _ID_BITS
    return (n ^ _id_mask(secret_key, tag)) & _ID_MASK


def normalized(code: str) -> str:
    """A receipt as a fan may type it back: any case, spaces or dashes between groups."""
    return code.strip().upper().replace(" ", "").replace("-", "")
