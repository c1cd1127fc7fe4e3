// Texts of the fan pages (join, ballot) in English and Spanish.

const TEXTS = {
  en: {
    "join.eyebrow": "Join the vote",
    "join.phoneLabel": "Your mobile number",
    "join.phoneHelp": "We text you a 6-digit code. Reply STOP at any time to stop our texts.",
    "join.send": "Text me a code",
    "join.codeLabel": "The 6-digit code we texted you",
    "join.confirm": "Confirm and vote",
    "join.again": "Use another number",
    "join.linkSentTitle": "Check your texts",
    "join.linkSent": "We texted you the link to your ballot.",
    "join.codeSent": "We texted a code to {phone}. It is valid for 10 minutes.",
    "join.codeOrLink": "If we texted you a ballot link instead, just open it.",
    "join.needPhone": "Enter your mobile number.",
    "join.needCode": "Enter the 6 digits of the code.",
    "join.wait": "Too many tries. Wait {seconds} seconds and try again.",
    "join.opening": "Opening your ballot…",
    "ballot.loading": "Loading your ballot…",
    "ballot.invalid": "This ballot link is not valid any more. Join again to get a new one.",
    "ballot.notStarted": "Voting has not started yet. Keep this page open.",
    "ballot.tap": "Tap an artist to vote.",
    "ballot.tapMany": "Tap an artist to vote. You have {n} votes in this round.",
    "ballot.sending": "Sending your vote…",
    "ballot.voted": "Your vote for {name} is in. Thank you!",
    "ballot.changed": "Your vote now goes to {name}.",
    "ballot.receipt": "Receipt: {receipt}",
    "ballot.already": "You already voted in this round.",
    "ballot.closedWaiting": "Round {n} ({name}) is closed. Waiting for the next round: keep this page open.",
    "ballot.over": "Voting is over. Thank you for taking part!",
    "ballot.cannot": "You cannot vote: {reason}",
    "ballot.offline": "Connection lost. Try again in a moment.",
    "ballot.error": "Something went wrong: {detail}",
    "ballot.code": "Code {code}",
    "ballot.yourVote": "Your vote",
    "ballot.round": "Round {n}: {name}",
    "ballot.smsHint": "You can also text VOTE and the artist's code.",
  },
  es: {
    "join.eyebrow": "Únete a la votación",
    "join.phoneLabel": "Tu número de móvil",
    "join.phoneHelp": "Te enviamos un código de 6 dígitos. Responde STOP cuando quieras para no recibir más mensajes.",
    "join.send": "Envíame un código",
    "join.codeLabel": "El código de 6 dígitos que te enviamos",
    "join.confirm": "Confirmar y votar",
    "join.again": "Usar otro número",
    "join.linkSentTitle": "Revisa tus mensajes",
    "join.linkSent": "Te enviamos el enlace a tu papeleta.",
    "join.codeSent": "Enviamos un código al {phone}. Es válido durante 10 minutos.",
    "join.codeOrLink": "Si en su lugar te enviamos un enlace a la papeleta, ábrelo.",
    "join.needPhone": "Escribe tu número de móvil.",
    "join.needCode": "Escribe los 6 dígitos del código.",
    "join.wait": "Demasiados intentos. Espera {seconds} segundos y vuelve a intentarlo.",
    "join.opening": "Abriendo tu papeleta…",
    "ballot.loading": "Cargando tu papeleta…",
    "ballot.invalid": "Este enlace ya no es válido. Únete de nuevo para recibir otro.",
    "ballot.notStarted": "La votación aún no ha empezado. Deja esta página abierta.",
    "ballot.tap": "Toca un artista para votar.",
    "ballot.tapMany": "Toca un artista para votar. Tienes {n} votos en esta ronda.",
    "ballot.sending": "Enviando tu voto…",
    "ballot.voted": "Tu voto por {name} está registrado. ¡Gracias!",
    "ballot.changed": "Tu voto ahora es para {name}.",
    "ballot.receipt": "Comprobante: {receipt}",
    "ballot.already": "Ya votaste en esta ronda.",
    "ballot.closedWaiting": "La ronda {n} ({name}) está cerrada. Esperando la siguiente ronda: deja esta página abierta.",
    "ballot.over": "La votación ha terminado. ¡Gracias por participar!",
    "ballot.cannot": "No puedes votar: {reason}",
    "ballot.offline": "Sin conexión. Inténtalo de nuevo en un momento.",
    "ballot.error": "Algo salió mal: {detail}",
    "ballot.code": "Código {code}",
    "ballot.yourVote": "Tu voto",
    "ballot.round": "Ronda {n}: {name}",
    "ballot.smsHint": "También puedes enviar VOTAR y el código del artista por SMS.",
  },
};

export function pickLanguage(...candidates) {
  for (const candidate of candidates) {
    const code = String(candidate || "").slice(0, 2).toLowerCase();
    if (code in TEXTS) return code;
  }
  return "en";
}

export function translator(language) {
  const texts = TEXTS[language] || TEXTS.en;
  return (key, vars = {}) =>
    (texts[key] || TEXTS.en[key] || key).replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : ""));
}

// Fill every [data-i18n] element of the page with its text in `language`.
export function applyTexts(language) {
  const t = translator(language);
  document.documentElement.lang = language;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  return t;
}
