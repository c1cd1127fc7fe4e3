"""Every text to fans, in each language, fits two SMS segments of the GSM-7 alphabet, with its longest values."""

from __future__ import annotations

import datetime as dt
import string

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import pytest

from stagevote.core.security import encode_jwt
from stagevote.messaging.texts import TEXTS, text

SEGMENT = 153  # GSM-7 characters in one part of a concatenated SMS (160 for a single one)
# a realistic deployment with very large ids: the ballot link is the longest value a text carries
PUBLIC_URL = "https://vote.stagevote.example"
TOKEN = encode_jwt(
    {"att": 987_654_321, "evt": 12_345_678}, secret="s" * 48, purpose="ballot", lifetime=dt.timedelta(days=400)
)
LONGEST = {
    "kw": "K" + "W" * 31,  # keywords have at most 32 characters
    "code": "999999",
    "url": f"{PUBLIC_URL}/b/{TOKEN}",
    "tries": 4,
    "word": "X" * 60,  # cut to 20 when filled in
    "detail": "d" * 400,  # cut to 160
    "round": 100,
}


def septets(message: str) -> int:
    """GSM-7 characters the text takes (an extension character such as € or [ takes two)."""
    return len(message.encode("gsm03.38"))


def segments(message: str) -> int:
    length = septets(message)
    return 1 if length <= 160 else -(-length // SEGMENT)


@pytest.mark.parametrize("key", sorted(TEXTS))
@pytest.mark.parametrize("language", ["en", "es"])
def test_every_text_is_gsm7_and_fits_two_segments(key: str, language: str) -> None:
    rendered = text(key, language, **LONGEST)  # type: ignore[arg-type]
    assert septets(rendered) <= 2 * SEGMENT, (key, language, septets(rendered), rendered)
    assert segments(rendered) <= 2
    assert "{" not in rendered and "}" not in rendered


def test_only_known_values_are_filled_in() -> None:
    for key, languages in TEXTS.items():
        for language, template in languages.items():
            names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
            assert names <= set(LONGEST), (key, language, names)


def test_spanish_avoids_characters_outside_gsm7() -> None:
    for key, languages in TEXTS.items():
        for character in "áíóúÁÍÓÚ’“”…":
            assert character not in languages["es"], (key, character)
            assert character not in languages["en"], (key, character)


def test_echoed_values_are_cut_and_the_language_falls_back_to_english() -> None:
    cut = text("unknown_event", "es", word="Y" * 50)
    assert "Y" * 17 + "..." in cut and "Y" * 18 not in cut
    assert text("help", "fr") == text("help", "en")
    assert text("help", None) == text("help", "en")
