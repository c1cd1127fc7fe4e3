"""What stagevote says to fans by SMS, in English and Spanish: every text fits two GSM-7 segments (306 characters).

Spanish copy keeps to the GSM-7 alphabet (é, ñ, ¿ and ¡ are in it; á, í, ó and ú are not, and one of them
would turn the whole text into UCS-2 with 67 characters a segment), so some words are chosen to avoid them.
Values filled in are made GSM-7 too (an artist's "Rós" becomes "Ros", an emoji a "?") and bounded in
septets: keywords have at most 32 characters, codes six digits, an echoed word is cut to 20, an error
detail to 160, an artist's name to 20 and the standings line (`top_line`: the top 3 with their votes) to
110. Only the ballot link (`PUBLIC_URL` + `/b/` + a token of about 190 characters) grows with the
deployment: with a 32-character keyword and 9-digit ids, the texts carrying it fit two segments for a
`PUBLIC_URL` of up to about 35 characters (a longer one makes them three segments: still delivered, at a
higher price). The fan journey's texts (NUDGE, RESULTS, RECAP) are short for that reason, and leave the
STOP reminder to the welcome text. E-mail subjects (`subject`) are not SMS and may use any character.
tests/messaging/test_texts.py checks it all.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Literal

Language = Literal["en", "es"]
TextKey = Literal[
    "join_code",
    "join_ballot",
    "already_in",
    "web_code",
    "web_ballot",
    "confirmed",
    "private",
    "unknown_event",
    "join_how",
    "code_wrong",
    "code_locked",
    "code_expired",
    "code_none",
    "stop",
    "start",
    "help",
    "unknown",
    "vote_counted",
    "vote_not_joined",
    "vote_sms_off",
    "vote_confirm_first",
    "vote_refused",
    "vote_closed",
    "vote_bad_code",
    "vote_forbidden",
    "nudge_open",
    "nudge_closing",
    "nudge",
    "results_closed",
    "results_closed_plain",
    "results_so_far",
    "results_later",
    "results_final",
    "results_final_plain",
    "recap",
    "recap_plain",
]
# the message types an e-mail is sent for, each with a subject of its own
EmailType = Literal["NUDGE", "RESULTS", "RECAP", "CUSTOM"]

TEXTS: dict[TextKey, dict[Language, str]] = {
    # JOIN by SMS: the reply welcomes the fan and carries the code, or the ballot link without confirmation
    "join_code": {
        "en": "Welcome to {kw}! Your stagevote code is {code}. Reply with it within 10 min to confirm your number."
        " Msg&data rates may apply. Reply HELP for help, STOP to opt out.",
        "es": "¡Te damos la bienvenida a {kw}! Tu clave de stagevote es {code}. Responde con ella en 10 min para"
        " confirmar tu teléfono. Pueden aplicarse cargos por mensajes y datos. AYUDA para ayuda, STOP para"
        " darte de baja.",
    },
    "join_ballot": {
        "en": "Welcome to {kw}! Vote: {url} Reply STOP to opt out.",
        "es": "¡Te uniste a {kw}! Vota: {url} STOP para darte de baja.",
    },
    "already_in": {
        "en": "You're already in {kw}. Your ballot: {url}",
        "es": "Ya te uniste a {kw}. Vota en: {url}",
    },
    # after a web join (CONFIRM, through the provider)
    "web_code": {
        "en": "Your stagevote code for {kw} is {code}. Enter it on the join page, or reply with it, within 10 min."
        " Msg&data rates may apply. Reply STOP to opt out.",
        "es": "Tu clave de stagevote para {kw} es {code}. Ponla en la web o responde con ella en 10 min. Pueden"
        " aplicarse cargos por mensajes y datos. STOP para darte de baja.",
    },
    "web_ballot": {
        "en": "Welcome to {kw}! Vote: {url} Reply STOP to opt out.",
        "es": "¡Te uniste a {kw}! Vota: {url} STOP para darte de baja.",
    },
    "confirmed": {
        "en": "Confirmed! Your {kw} ballot: {url}",
        "es": "¡Confirmado! Vota en {kw}: {url}",
    },
    "private": {
        "en": "Sorry, {kw} is a private event and this number is not on its guest list. Please check with the"
        " organizer. Reply HELP for help.",
        "es": "Lo sentimos: {kw} es un evento privado y este teléfono no figura en su lista. Consulta con el"
        " organizador. AYUDA para ayuda.",
    },
    "unknown_event": {
        "en": "We found no open event called {word}. Check the keyword on the screen and text JOIN + keyword,"
        " e.g. JOIN ROCKFEST. Reply HELP for help.",
        "es": "No encontramos un evento abierto llamado {word}. Revisa la palabra clave en la pantalla y manda"
        " UNIRME + palabra clave, p. ej. UNIRME ROCKFEST. AYUDA para ayuda.",
    },
    "join_how": {
        "en": "To join, text JOIN + the event keyword shown at the venue, e.g. JOIN ROCKFEST.",
        "es": "Para unirte, manda UNIRME + la palabra clave del evento, p. ej. UNIRME ROCKFEST.",
    },
    # a 6-digit code texted back
    "code_wrong": {
        "en": "That code doesn't match. {tries} tries left: check the latest code we sent you.",
        "es": "Esa clave no coincide. Te quedan {tries} intentos: revisa la clave que te mandamos.",
    },
    "code_locked": {
        "en": "Too many wrong codes. Text {kw} again for a new code.",
        "es": "Demasiados intentos fallidos. Manda {kw} otra vez para recibir una clave nueva.",
    },
    "code_expired": {
        "en": "That code has expired. Text {kw} again for a new one.",
        "es": "Esa clave ya no vale. Manda {kw} otra vez para recibir una nueva.",
    },
    "code_none": {
        "en": "No code is waiting for this number. To join, text JOIN + the event keyword, e.g. JOIN ROCKFEST.",
        "es": "No hay ninguna clave pendiente para este teléfono. Para unirte, manda UNIRME + palabra clave, p. ej."
        " UNIRME ROCKFEST.",
    },
    # carrier keywords
    "stop": {
        "en": "stagevote: you're unsubscribed and will get no more messages. Reply START to resubscribe.",
        "es": "stagevote: baja confirmada, no te escribiremos de nuevo. Manda START para volver a suscribirte.",
    },
    "start": {
        "en": "stagevote: you're subscribed again. Reply HELP for help, STOP to opt out.",
        "es": "stagevote: te volviste a suscribir. AYUDA para ayuda, STOP para darte de baja.",
    },
    "help": {
        "en": "stagevote: live voting by text. Join: text JOIN + event keyword. Vote: text VOTE + artist code"
        " (e.g. VOTE 3). Msg&data rates may apply. Reply STOP to opt out.",
        "es": "stagevote: vota en vivo por SMS. Unirte: manda UNIRME + palabra clave del evento. Votar: manda VOTAR"
        " + clave del artista (p. ej. VOTAR 3). Pueden aplicarse cargos por mensajes y datos. STOP para darte de"
        " baja.",
    },
    "unknown": {
        "en": "stagevote didn't get that. To join, text JOIN + event keyword. To vote, text VOTE + artist code."
        " Reply HELP for help, STOP to opt out.",
        "es": "No entendimos tu mensaje. Para unirte, manda UNIRME + palabra clave. Para votar, VOTAR + clave del"
        " artista. AYUDA para ayuda, STOP para darte de baja.",
    },
    # votes by SMS
    "vote_counted": {
        "en": "Thanks! Your vote for {code} at {kw} (round {round}) is counted. Receipt: {receipt}",
        "es": "¡Gracias! Tu voto por {code} en {kw} (ronda {round}) ya cuenta. Comprobante: {receipt}",
    },
    "vote_not_joined": {
        "en": "To vote, first join a live event: text JOIN + the event keyword, e.g. JOIN ROCKFEST.",
        "es": "Para votar, primero manda UNIRME + la palabra clave del evento, p. ej. UNIRME ROCKFEST.",
    },
    "vote_sms_off": {
        "en": "Voting by text is off at {kw}. Please use your ballot link.",
        "es": "En {kw} no se vota por SMS. Usa tu enlace para votar.",
    },
    "vote_confirm_first": {
        "en": "Please confirm your number first: text {kw} for a code, then reply with it.",
        "es": "Primero confirma tu teléfono: manda {kw} para recibir una clave y responde con ella.",
    },
    "vote_refused": {
        "en": "Your vote at {kw} didn't count: {detail}",
        "es": "Tu voto en {kw} no cuenta: no hay una ronda abierta o ya usaste tus votos.",
    },
    "vote_closed": {
        "en": "Your vote at {kw} didn't count: {detail}",
        "es": "Tu voto en {kw} no cuenta: ahora no se puede votar.",
    },
    "vote_bad_code": {
        "en": "{code} is not an artist code in this round at {kw}. Check the screen and text VOTE + code.",
        "es": "{code} no es la clave de un artista de esta ronda en {kw}. Revisa la pantalla y manda VOTAR + clave.",
    },
    "vote_forbidden": {
        "en": "This number can't vote at {kw}: {detail}",
        "es": "Este teléfono no puede votar en {kw}.",
    },
    # the fan journey (NUDGE, RESULTS, RECAP): short, as most carry the ballot link
    "nudge_open": {
        "en": "{kw}: round {round} is open! Vote now: {url}",
        "es": "{kw}: ¡ronda {round} abierta! Vota ya: {url}",
    },
    "nudge_closing": {
        "en": "{kw}: round {round} closes in {minutes} min. Vote now: {url}",
        "es": "{kw}: la ronda {round} cierra en {minutes} min. Vota ya: {url}",
    },
    "nudge": {
        "en": "{kw}: don't miss your vote! Your ballot: {url}",
        "es": "{kw}: ¡no te quedes sin votar! Vota: {url}",
    },
    "results_closed": {
        "en": "{kw}: round {round} is closed. Top 3: {top}. Thanks for voting!",
        "es": "{kw}: terminada la ronda {round}. Los 3 primeros: {top}. ¡Gracias por votar!",
    },
    "results_closed_plain": {
        "en": "{kw}: round {round} is closed. Thanks for voting!",
        "es": "{kw}: terminada la ronda {round}. ¡Gracias por votar!",
    },
    "results_so_far": {
        "en": "{kw}: round {round} so far: {top}. Keep voting!",
        "es": "{kw}: la ronda {round} va asi: {top}. ¡Sigue votando!",
    },
    "results_later": {
        "en": "{kw}: the results of round {round} will be announced at the venue. Thanks for voting!",
        "es": "{kw}: los resultados de la ronda {round} se anuncian en el evento. ¡Gracias por votar!",
    },
    "results_final": {
        "en": "{kw} is over! Final results: {top}. Thanks for voting!",
        "es": "¡{kw} ha terminado! Resultado final: {top}. ¡Gracias por votar!",
    },
    "results_final_plain": {
        "en": "{kw} is over. Thanks for voting!",
        "es": "{kw} ha terminado. ¡Gracias por votar!",
    },
    "recap": {
        "en": "Thanks for being at {kw}! Relive the night: {url}",
        "es": "¡Gracias por estar en {kw}! Revive la noche: {url}",
    },
    "recap_plain": {
        "en": "Thanks for being at {kw}! See you at the next one.",
        "es": "¡Gracias por estar en {kw}! Nos vemos en el siguiente.",
    },
}

# E-mail subjects by message type; `title` is the event's title. Not SMS: any character goes.
SUBJECTS: dict[EmailType, dict[Language, str]] = {
    "NUDGE": {"en": "Vote now at {title}", "es": "Vota ahora en {title}"},
    "RESULTS": {"en": "Results of {title}", "es": "Resultados de {title}"},
    "RECAP": {"en": "Thanks for coming to {title}", "es": "Gracias por venir a {title}"},
    "CUSTOM": {"en": "News from {title}", "es": "Novedades de {title}"},
}

# how long an echoed value may be in a text, in GSM-7 septets (error details from other domains, words
# the fan typed, artists' names, the standings line)
MAX_DETAIL = 160
MAX_WORD = 20
MAX_NAME = 20
MAX_TOP = 110
TOP_PLACES = 3
_LIMITS = {"detail": MAX_DETAIL, "word": MAX_WORD, "code": MAX_WORD, "top": MAX_TOP}

# GSM 03.38: the basic alphabet (one septet each, the escape left out) and its extension (two septets each)
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = "^{}\\[~]|€\f"
_GSM7 = frozenset(GSM7_BASIC + GSM7_EXTENSION)
_EXTENSION = frozenset(GSM7_EXTENSION)
# typographic characters phones like to insert, and their GSM-7 twins
_LOOKALIKES = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-"})
_LOOKALIKES.update(str.maketrans({"…": "...", "\t": " ", "\u00a0": " "}))


def text(key: TextKey, language: str | None, **values: object) -> str:
    """The text `key` in `language` (English unless 'es'), with `values` filled in, GSM-7 and bounded."""
    lang: Language = "es" if language == "es" else "en"
    bounded = {name: _bounded(name, value) for name, value in values.items()}
    return TEXTS[key][lang].format(**bounded)


def subject(message_type: EmailType, language: str | None, **values: object) -> str:
    """The e-mail subject of `message_type` in `language`, on one line (`title`: the event's title)."""
    lang: Language = "es" if language == "es" else "en"
    return " ".join(SUBJECTS[message_type][lang].format(**values).split())


def top_line(placings: Iterable[tuple[int, str, int]]) -> str:
    """The `top` of a RESULTS text from (rank, artist name, votes), best first: "1. Name (120), 2. …".

    Only the first three are named; names are made GSM-7 and cut to `MAX_NAME` septets.
    """
    parts = [f"{rank}. {_cut(gsm7(name), MAX_NAME)} ({votes})" for rank, name, votes in list(placings)[:TOP_PLACES]]
    return ", ".join(parts)


def gsm7(value: str) -> str:
    """`value` in the GSM-7 alphabet: accents the alphabet lacks dropped (ó → o), lookalikes swapped, the rest '?'."""
    kept: list[str] = []
    for character in value.translate(_LOOKALIKES):
        if character in _GSM7:
            kept.append(character)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", character) if not unicodedata.combining(c))
        kept.append(base if base and all(c in _GSM7 for c in base) else "?")
    return "".join(kept)


def septets(value: str) -> int:
    """GSM-7 septets `value` takes (an extension character such as € or [ takes two)."""
    return len(value) + sum(1 for c in value if c in _EXTENSION)


def _cut(value: str, limit: int) -> str:
    if septets(value) <= limit:
        return value
    kept, used = [], 0
    for character in value:
        used += 2 if character in _EXTENSION else 1
        if used > limit - 3:
            break
        kept.append(character)
    return "".join(kept) + "..."


def _bounded(name: str, value: object) -> str:
    rendered = gsm7(str(value))
    limit = _LIMITS.get(name)
    return rendered if limit is None else _cut(rendered, limit)
