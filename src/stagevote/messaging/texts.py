"""What stagevote says to fans by SMS, in English and Spanish: every text fits two GSM-7 segments (306 characters).

Spanish copy keeps to the GSM-7 alphabet (é, ñ, ¿ and ¡ are in it; á, í, ó and ú are not, and one of them
would turn the whole text into UCS-2 with 67 characters a segment), so some words are chosen to avoid them.
Values are bounded where they are filled in: keywords have at most 32 characters, codes six digits, an
echoed word is cut to 20 and an error detail to 160. Only the ballot link (`PUBLIC_URL` + `/b/` + a token
of about 190 characters) grows with the deployment: with a 32-character keyword and 9-digit ids, the
texts carrying it fit two segments for a `PUBLIC_URL` of up to about 35 characters (a longer one makes
them three segments: still delivered, at a higher price). tests/messaging/test_texts.py checks it all.
"""

from __future__ import annotations

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
]

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
        "en": "Thanks! Your vote for {code} at {kw} (round {round}) is counted.",
        "es": "¡Gracias! Tu voto por {code} en {kw} (ronda {round}) ya cuenta.",
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
}

# how long an echoed value may be in a text (error details from other domains, words the fan typed)
MAX_DETAIL = 160
MAX_WORD = 20


def text(key: TextKey, language: str | None, **values: object) -> str:
    """The text `key` in `language` (English unless 'es'), with `values` filled in and bounded."""
    lang: Language = "es" if language == "es" else "en"
    bounded = {name: _bounded(name, value) for name, value in values.items()}
    return TEXTS[key][lang].format(**bounded)


def _bounded(name: str, value: object) -> str:
    rendered = str(value)
    limit = {"detail": MAX_DETAIL, "word": MAX_WORD, "code": MAX_WORD}.get(name)
    if limit is not None and len(rendered) > limit:
        return rendered[: limit - 3] + "..."
    return rendered
