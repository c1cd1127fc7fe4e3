"""Every text to fans, in each language, fits two SMS segments of the GSM-7 alphabet, with its longest values.

"Longest" is counted in septets: a free-text value (a word the fan typed, an artist's name) is at its worst
made of extension characters such as €, which take two septets each.
"""

from __future__ import annotations

import datetime as dt
import string
from types import SimpleNamespace
from typing import cast

import gsm0338  # noqa: F401  (registers the "gsm03.38" codec)
import pytest
from pydantic import SecretStr

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.core.db import utcnow
from stagevote.core.runtime import Runtime
from stagevote.events.models import Event
from stagevote.messaging import texts
from stagevote.messaging.texts import GSM7_BASIC, GSM7_EXTENSION, SUBJECTS, TEXTS, gsm7, subject, text, top_line

SEGMENT = 153  # GSM-7 characters in one part of a concatenated SMS (160 for a single one)
# a realistic deployment with very large ids: the ballot link is the longest value a text carries
PUBLIC_URL = "https://vote.stagevote.example"
TOKEN = attendees_service.ballot_token_for(  # the app's own ballot token, for an event that ends in 400 days
    runtime=cast(Runtime, SimpleNamespace(secret_key=SecretStr("s" * 48))),
    attendee=Attendee(id=987_654_321),
    event=Event(id=12_345_678, end_date=utcnow() + dt.timedelta(days=400)),
)
WIDE = "€"  # two septets
LONGEST = {
    "kw": "K" + "W" * 31,  # keywords have at most 32 characters
    "code": WIDE * 30,  # a 6-digit code, or a vote code the fan typed: cut to 20 septets
    "url": f"{PUBLIC_URL}/b/{TOKEN}",
    "tries": 4,
    "word": WIDE * 60,  # cut to 20 septets when filled in
    "detail": WIDE * 400,  # cut to 160
    "round": 100,
    "minutes": 1440,  # the most nudgeMinutesBeforeClose allows
    "receipt": "R" * 16,  # a vote receipt: 16 base32 characters
    "top": top_line([(1, WIDE * 40, 987_654_321), (2, WIDE * 40, 987_654_320), (2, WIDE * 40, 987_654_320)]),
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


def test_the_alphabet_is_gsm_03_38() -> None:
    assert len(GSM7_BASIC) == 127  # 128 less the escape
    for character in GSM7_BASIC:
        assert septets(character) == 1, repr(character)
    for character in GSM7_EXTENSION:
        assert septets(character) == 2, repr(character)
    assert septets(GSM7_BASIC + GSM7_EXTENSION) == texts.septets(GSM7_BASIC + GSM7_EXTENSION)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Sigur Rós", "Sigur Ros"),
        ("Beyoncé & Ñandú", "Beyoncé & Ñandu"),  # é and Ñ are GSM-7; ú is not
        ("“Quoted” – it’s…", '"Quoted" - it\'s...'),
        ("Rock 🎸 Band", "Rock ? Band"),
        ("Łódź", "?odz"),
        ("東京", "??"),
        ("[€]", "[€]"),
    ],
)
def test_values_are_made_gsm7(value: str, expected: str) -> None:
    assert gsm7(value) == expected
    septets(gsm7(value))  # encodes


def test_any_value_leaves_a_text_gsm7() -> None:
    every = "".join(chr(c) for c in range(32, 0x3000) if not 0xD800 <= c <= 0xDFFF) + "🎸😀"
    for chunk in range(0, len(every), 20):
        rendered = text("vote_bad_code", "es", code=every[chunk : chunk + 20], kw="ROCKFEST")
        septets(rendered)  # raises on a character outside GSM-7
        assert septets(rendered) <= 2 * SEGMENT


def test_a_free_text_value_is_cut_by_septets() -> None:
    cut = text("unknown_event", "en", word=WIDE * 50)
    assert WIDE * 8 + "..." in cut and WIDE * 9 not in cut  # 8 × 2 + 3 ≤ 20


def test_the_top_line_names_three_artists_with_their_votes() -> None:
    line = top_line([(1, "Sigur Rós", 120), (2, "The Very Long Band Name Of Doom", 99), (2, "Tie", 99), (4, "X", 1)])
    assert line == "1. Sigur Ros (120), 2. The Very Long Ban... (99), 2. Tie (99)"
    assert top_line([]) == ""
    results = text("results_final", "es", kw="ROCKFEST", top=line)
    assert results == "¡ROCKFEST ha terminado! Resultado final: " + line + ". ¡Gracias por votar!"


@pytest.mark.parametrize("language", ["en", "es"])
def test_the_journey_texts_carry_their_values(language: str) -> None:
    values = {"kw": "ROCKFEST", "round": 2, "minutes": 5, "url": "https://v.example/b/tok", "top": "1. A (3)"}
    wanted = {
        "nudge_open": ["ROCKFEST", "2", "https://v.example/b/tok"],
        "nudge_closing": ["ROCKFEST", "2", "5 min", "https://v.example/b/tok"],
        "nudge": ["ROCKFEST", "https://v.example/b/tok"],
        "results_closed": ["ROCKFEST", "2", "1. A (3)"],
        "results_closed_plain": ["ROCKFEST", "2"],
        "results_so_far": ["ROCKFEST", "2", "1. A (3)"],
        "results_later": ["ROCKFEST", "2"],
        "results_final": ["ROCKFEST", "1. A (3)"],
        "results_final_plain": ["ROCKFEST"],
        "recap": ["ROCKFEST", "https://v.example/b/tok"],
        "recap_plain": ["ROCKFEST"],
    }
    for key, parts in wanted.items():
        rendered = text(key, language, **values)  # type: ignore[arg-type]
        assert all(part in rendered for part in parts), (key, rendered)
    assert text("nudge_open", "es", **values) != text("nudge_open", "en", **values)


def test_every_email_type_has_a_subject_in_both_languages() -> None:
    assert set(SUBJECTS) == {"NUDGE", "RESULTS", "RECAP", "CUSTOM"}
    for kind, languages in SUBJECTS.items():
        assert set(languages) == {"en", "es"}
        english = subject(kind, "en", title="Battle of the Bands")
        spanish = subject(kind, "es", title="Battle of the Bands")
        assert "Battle of the Bands" in english and "Battle of the Bands" in spanish and english != spanish
        assert subject(kind, "fr", title="T") == subject(kind, None, title="T") == subject(kind, "en", title="T")
    assert subject("CUSTOM", "en", title="Rock\r\nFest  2026") == "News from Rock Fest 2026"  # one header line
