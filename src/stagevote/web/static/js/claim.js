// An artist's invitation: sign in (or create an account), claim the profile, accept or decline.
import { ApiError } from "./api.js";
import { Session } from "./session.js";

const claimToken = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const artistId = Number(document.body.dataset.artistId);
const eventId = Number(document.body.dataset.eventId);
const form = document.getElementById("account-form");
const accountError = document.getElementById("account-error");
const answer = document.getElementById("answer");
const answerError = document.getElementById("answer-error");
const done = document.getElementById("done");
const inviteStatus = document.getElementById("invite-status");

const session = new Session({
  onEnd() {
    answer.hidden = true;
    document.getElementById("sign-in").hidden = false;
  },
});

function problem(error, field) {
  if (error instanceof ApiError) return (field && error.fieldMessage(field)) || error.message;
  return String(error);
}

form.addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  accountError.textContent = "";
  const how = submitted.submitter && submitted.submitter.value === "signup" ? "signup" : "login";
  const email = form.elements.email.value.trim();
  const password = form.elements.password.value;
  if (!email || !password) {
    accountError.textContent = "Enter your e-mail and a password.";
    return;
  }
  for (const control of form.querySelectorAll("button, input")) control.disabled = true;
  try {
    if (how === "signup") await session.signup(email, password);
    else await session.login(email, password);
    await session.call("POST", `/artists/${artistId}/claim`, { body: { claimToken } });
    document.getElementById("sign-in").hidden = true;
    answer.hidden = false;
    document.getElementById("accept").focus();
  } catch (error) {
    accountError.textContent = problem(error, how === "signup" ? "password" : null);
  } finally {
    for (const control of form.querySelectorAll("button, input")) control.disabled = false;
  }
});

async function respond(accept) {
  answerError.textContent = "";
  try {
    const result = await session.call("POST", `/events/${eventId}/artists/${artistId}/${accept ? "accept" : "decline"}`);
    inviteStatus.textContent = result.inviteStatus;
    done.textContent = accept
      ? "Accepted: you are in the line-up. Fans will see you on the ballot and the venue screen."
      : "Declined: the organizer will see your answer.";
  } catch (error) {
    answerError.textContent = problem(error);
  }
}

document.getElementById("accept").addEventListener("click", () => respond(true));
document.getElementById("decline").addEventListener("click", () => respond(false));
