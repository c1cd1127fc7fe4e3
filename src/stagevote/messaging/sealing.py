"""Secrets in messages: ballot tokens and confirmation codes are stored redacted, the text as sent only sealed.

What counts as a secret, wherever a text was written (a template here, the attendees or sms domain, an
organizer's body):
- a ballot token: anything shaped like a JWT (`eyJ….….…`, how `{PUBLIC_URL}/b/{token}` carries it), and
  any long path segment after `/b/`, in every message;
- a confirmation code: six digits standing alone, in JOIN and CONFIRM messages, the only ones that carry
  codes (elsewhere six digits may be a vote count).

`seal` gives the body to store (each secret replaced by `[token]` or `[code]`) and, when it replaced
anything, the text as it is to be sent, encrypted: Fernet (AES-128-CBC with HMAC-SHA256) under a key
derived from `SECRET_KEY` with HKDF. The outbox unseals it when it hands the message to the provider;
the history API and anything else reading `messages.body` or `inbound_messages.reply` sees the redacted
text. Whoever can unseal holds `SECRET_KEY`, and with it could sign ballot tokens and test codes against
their HMAC anyway: sealing opens no way in that the key did not. A new `SECRET_KEY` leaves sealed texts
unreadable: such a message fails, saying so.
"""

from __future__ import annotations

import base64
import functools
import re
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOKEN_MARK = "[token]"
CODE_MARK = "[code]"
# the message types whose texts carry a confirmation code (attendees.join_on_web, sms JOIN replies)
CARRIES_CODES = frozenset({"JOIN", "CONFIRM"})

_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_BALLOT_PATH = re.compile(r"(?<=/b/)(?!\[token\])[A-Za-z0-9._~%-]{16,}")
_CODE = re.compile(r"(?<![0-9A-Za-z])[0-9]{6}(?![0-9A-Za-z])")
_INFO = b"stagevote: sealed message texts"


class Unsealable(Exception):
    """The sealed text cannot be opened: written under another SECRET_KEY, or damaged."""


@dataclass(frozen=True)
class Stored:
    """What a message keeps: its body with the secrets redacted, and the text as sent, sealed (None: no secret)."""

    body: str
    sealed: str | None


def redact(text: str, message_type: str | None) -> str:
    """`text` with every ballot token (and, in JOIN and CONFIRM messages, every code) replaced by a mark."""
    shown = _BALLOT_PATH.sub(TOKEN_MARK, _JWT.sub(TOKEN_MARK, text))
    if message_type in CARRIES_CODES:
        shown = _CODE.sub(CODE_MARK, shown)
    return shown


def seal(secret_key: str, text: str, message_type: str | None) -> Stored:
    """The body to store for `text`, and `text` sealed when the body had to leave something out."""
    shown = redact(text, message_type)
    if shown == text:
        return Stored(text, None)
    return Stored(shown, _fernet(secret_key).encrypt(text.encode()).decode("ascii"))


def unseal(secret_key: str, body: str, sealed: str | None) -> str:
    """The text as it is to be sent: the sealed one when there is one, otherwise the body itself."""
    if sealed is None:
        return body
    try:
        return _fernet(secret_key).decrypt(sealed.encode("ascii")).decode()
    except (InvalidToken, UnicodeError, ValueError) as exc:
        raise Unsealable("the sealed text cannot be opened with this SECRET_KEY") from exc


@functools.lru_cache(maxsize=8)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret_key.encode())
    return Fernet(base64.urlsafe_b64encode(key))
