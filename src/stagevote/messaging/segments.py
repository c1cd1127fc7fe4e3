"""What an SMS costs before it is sent: its encoding (GSM-7 or UCS-2), its segments, and their price by country.

Encoding: a text of GSM 03.38 characters only goes as GSM-7; the characters of its extension table
(`^ { } [ ] ~ \\ | €` and form feed) take two septets each (an escape, then the character). Any other
character makes the whole text UCS-2, where a character outside the Basic Multilingual Plane (most
emoji) takes two 16-bit units (a surrogate pair).
Segments: GSM-7 fits 160 septets in one message, or 153 per part of a longer one (the rest carries the
concatenation header); UCS-2 fits 70 units, or 67 per part. Parts are filled greedily without splitting an
escape sequence or a surrogate pair, as handsets and Twilio do, so a part may hold one unit less.
Price: per segment, from the table of the `SMS_PRICES` setting by the number's region (phonenumbers'
region code, e.g. US, GB), else its `default` entry.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

import phonenumbers

Encoding = Literal["gsm7", "ucs2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
# (one message, each part of a longer one), in septets (GSM-7) or 16-bit units (UCS-2)
LIMITS: dict[Encoding, tuple[int, int]] = {"gsm7": (160, 153), "ucs2": (70, 67)}
DEFAULT_PRICE_KEY = "default"


def encoding_of(text: str) -> Encoding:
    """GSM-7 when every character is in the GSM 03.38 basic or extension table, else UCS-2."""
    return "gsm7" if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text) else "ucs2"


def _units(text: str, encoding: Encoding) -> list[int]:
    """What each character takes: septets (GSM-7) or 16-bit units (UCS-2)."""
    if encoding == "gsm7":
        return [2 if ch in GSM7_EXTENSION else 1 for ch in text]
    return [2 if ord(ch) > 0xFFFF else 1 for ch in text]


@dataclass(frozen=True)
class Segmented:
    encoding: Encoding
    units: int  # septets or 16-bit units in all
    segments: int


def segment(text: str) -> Segmented:
    """The encoding of `text` and how many segments it goes out in (at least one)."""
    encoding = encoding_of(text)
    units = _units(text, encoding)
    single, part = LIMITS[encoding]
    total = sum(units)
    if total <= single:
        return Segmented(encoding, total, 1)
    segments, filled = 1, 0
    for unit in units:  # greedy: a character that does not fit whole starts the next part
        if filled + unit > part:
            segments += 1
            filled = 0
        filled += unit
    return Segmented(encoding, total, segments)


@functools.lru_cache(maxsize=65_536)
def region_of(phone_number: str) -> str | None:
    """The region code (ISO 3166 alpha-2, e.g. US, GB) of an E.164 number, or None when phonenumbers cannot tell."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(phone_number, None)) or None
    except phonenumbers.NumberParseException:
        return None


def price_per_segment(prices: Mapping[str, Decimal], phone_number: str) -> Decimal:
    """The price of one segment to the number: its region's entry of `prices`, else the `default` one (else 0)."""
    region = region_of(phone_number)
    if region is not None and region in prices:
        return prices[region]
    return prices.get(DEFAULT_PRICE_KEY, Decimal(0))


@dataclass(frozen=True)
class Estimate:
    """What a batch of SMS will take: the widest encoding among them, the most segments one of them takes,
    the segments of all of them, and their price."""

    encoding: Encoding
    segments_per_message: int
    total_segments: int
    cost: Decimal


def estimate(texts: Iterable[tuple[str, str]], prices: Mapping[str, Decimal]) -> Estimate:
    """Estimate (phone number, text) pairs, each text as that recipient gets it (a ballot link is each one's own)."""
    encoding: Encoding = "gsm7"
    longest = total = 0
    cost = Decimal(0)
    for phone_number, text in texts:
        found = segment(text)
        if found.encoding == "ucs2":
            encoding = "ucs2"
        longest = max(longest, found.segments)
        total += found.segments
        cost += price_per_segment(prices, phone_number) * found.segments
    return Estimate(encoding, longest, total, cost)
