// The web join: phone number in, a code by SMS, the code back, then on to the ballot.
import { ApiError, call } from "./api.js";
import { applyTexts, pickLanguage } from "./i18n.js";

const eventId = Number(document.body.dataset.eventId);
const phoneForm = document.getElementById("phone-form");
const codeForm = document.getElementById("code-form");
const linkSent = document.getElementById("link-sent");
const phoneInput = document.getElementById("phone");
const codeInput = document.getElementById("code");
const phoneError = document.getElementById("phone-error");
const codeError = document.getElementById("code-error");

const asked = new URLSearchParams(location.search).get("lang");
let language = pickLanguage(asked, ...(navigator.languages || [navigator.language]), document.body.dataset.defaultLanguage);
let t = applyTexts(language);
let attendeeId = null;
let event = null;

for (const button of document.querySelectorAll("[data-language]")) {
  button.addEventListener("click", () => {
    language = button.dataset.language;
    t = applyTexts(language);
    markLanguage();
  });
}

function markLanguage() {
  for (const button of document.querySelectorAll("[data-language]")) {
    button.setAttribute("aria-pressed", button.dataset.language === language ? "true" : "false");
  }
}
markLanguage();

function problemText(error, field) {
  if (error instanceof ApiError && error.status === 429) return t("join.wait", { seconds: error.retryAfter || 60 });
  if (error instanceof ApiError) return (field && error.fieldMessage(field)) || error.message;
  return String(error);
}

function busy(form, on) {
  for (const control of form.querySelectorAll("button, input")) control.disabled = on;
}

phoneForm.addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  phoneError.textContent = "";
  const phoneNumber = phoneInput.value.trim();
  if (!phoneNumber) {
    phoneError.textContent = t("join.needPhone");
    phoneInput.focus();
    return;
  }
  busy(phoneForm, true);
  try {
    event = event || (await call("GET", `/events/${eventId}`));
    const joined = await call("POST", `/events/${eventId}/join`, { body: { phoneNumber, languagePref: language } });
    attendeeId = joined.attendeeId;
    const needsCode = event.accessType === "hybrid" || event.voteConfig.requireConfirmation;
    phoneForm.hidden = true;
    if (!needsCode) {
      linkSent.hidden = false;
      return;
    }
    codeForm.hidden = false;
    document.getElementById("code-help").textContent = `${t("join.codeSent", { phone: phoneNumber })} ${t("join.codeOrLink")}`;
    codeInput.focus();
  } catch (error) {
    phoneError.textContent = problemText(error, "phoneNumber");
  } finally {
    busy(phoneForm, false);
  }
});

codeForm.addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  codeError.textContent = "";
  const code = codeInput.value.replace(/\D/g, "");
  if (code.length !== 6) {
    codeError.textContent = t("join.needCode");
    codeInput.focus();
    return;
  }
  busy(codeForm, true);
  try {
    const confirmed = await call("POST", `/attendees/${attendeeId}/confirm`, { body: { code } });
    document.getElementById("code-help").textContent = t("join.opening");
    location.replace(`/b/${encodeURIComponent(confirmed.ballotToken)}`);
  } catch (error) {
    codeError.textContent = problemText(error, "code");
    busy(codeForm, false);
    codeInput.select();
  }
});

document.getElementById("again").addEventListener("click", () => {
  codeForm.hidden = true;
  phoneForm.hidden = false;
  codeInput.value = "";
  codeError.textContent = "";
  phoneInput.focus();
});
