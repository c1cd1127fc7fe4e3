// The organizer console: events, their artists, lifecycle and rounds, live counts, messages and reports.
// Everything goes through the public API with the organizer's access token, held in memory only.
import { ApiError, element, freshToken } from "./api.js";
import { connectLive } from "./live.js";
import { Session } from "./session.js";

const $ = (id) => document.getElementById(id);
const session = new Session({ onEnd: () => showSignIn("Your session ended: sign in again.") });
const LIFECYCLE = {
  publish: ["draft"],
  start: ["published"],
  close: ["live"],
  archive: ["draft", "closed"],
};
const view = { eventId: null, event: null, live: null, timer: null, broadcastKey: freshToken(), dryRun: null };

function problem(error) {
  if (!(error instanceof ApiError)) return String(error);
  const fields = error.errors.map((e) => `${e.field}: ${e.message}`).join("; ");
  return fields ? `${error.message} (${fields})` : error.message;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : "";
}

// --- signing in ------------------------------------------------------------------------------------

function showSignIn(message = "") {
  leaveEvent();
  $("sign-in").hidden = false;
  $("events-view").hidden = true;
  $("event-view").hidden = true;
  $("who").hidden = true;
  $("sign-in-error").textContent = message;
}

$("sign-in-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    const user = await session.login($("email").value.trim(), $("password").value);
    if (user.role !== "admin") {
      await session.logout();
      showSignIn("The console is for organizers: this account is not an admin.");
      return;
    }
    $("password").value = "";
    $("sign-in").hidden = true;
    $("who").hidden = false;
    $("who-email").textContent = user.email;
    route();
  } catch (error) {
    $("sign-in-error").textContent = problem(error);
  }
});

$("sign-out").addEventListener("click", async () => {
  await session.logout();
  showSignIn();
});

// --- routing: #/ (events) and #/events/{id} ------------------------------------------------------------

function route() {
  if (!session.signedIn) return showSignIn();
  const match = location.hash.match(/^#\/events\/(\d+)$/);
  if (match) openEvent(Number(match[1]));
  else listEvents();
}

window.addEventListener("hashchange", route);

// --- events ----------------------------------------------------------------------------------------

async function listEvents() {
  leaveEvent();
  $("event-view").hidden = true;
  $("events-view").hidden = false;
  const body = $("events");
  try {
    const page = await session.call("GET", "/events?limit=200");
    body.replaceChildren(
      ...page.items.map((event) =>
        element(
          "tr",
          {},
          element("td", {}, element("a", { href: `#/events/${event.id}` }, event.title)),
          element("td", {}, event.keyword),
          element("td", {}, when(event.startDate)),
          element("td", {}, element("span", { className: `pill ${event.status}` }, event.status)),
        ),
      ),
    );
    if (!page.items.length) body.append(element("tr", {}, element("td", { colspan: 4 }, "No events yet: create one below.")));
  } catch (error) {
    body.replaceChildren(element("tr", {}, element("td", { colspan: 4 }, problem(error))));
  }
}

function isoFromLocal(value) {
  return value ? new Date(value).toISOString() : null;
}

function localInput(date) {
  const shifted = new Date(date.getTime() - date.getTimezoneOffset() * 60000);
  return shifted.toISOString().slice(0, 16);
}

(function defaultDates() {
  const start = new Date();
  start.setMinutes(0, 0, 0);
  $("ev-start").value = localInput(start);
  $("ev-end").value = localInput(new Date(start.getTime() + 4 * 3600 * 1000));
})();

$("event-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  $("event-error").textContent = "";
  const names = $("ev-rounds")
    .value.split("\n")
    .map((name) => name.trim())
    .filter(Boolean);
  const body = {
    title: $("ev-title").value.trim(),
    keyword: $("ev-keyword").value.trim(),
    venue: $("ev-venue").value.trim() || null,
    startDate: isoFromLocal($("ev-start").value),
    endDate: isoFromLocal($("ev-end").value),
    accessType: $("ev-access").value,
    defaultLanguage: $("ev-language").value,
    voteConfig: {
      rounds: (names.length ? names : ["Final"]).map((name, index) => ({ number: index + 1, name })),
      leaderboardVisibility: $("ev-visibility").value,
    },
  };
  try {
    const event = await session.call("POST", "/events", { body });
    $("event-form").reset();
    location.hash = `#/events/${event.id}`;
  } catch (error) {
    $("event-error").textContent = problem(error);
  }
});

// --- one event ------------------------------------------------------------------------------------------

function leaveEvent() {
  if (view.live) view.live.socket.disconnect();
  clearInterval(view.timer);
  view.live = null;
  view.timer = null;
  view.eventId = null;
}

async function openEvent(eventId) {
  if (view.eventId !== eventId) {
    leaveEvent();
    view.eventId = eventId;
    view.live = connectLive({
      eventId,
      token: () => session.token,
      onAck(ack) {
        if (ack.ok && ack.leaderboard) showStandings(ack.leaderboard);
      },
      handlers: {
        leaderboard: (board) => board.eventId === view.eventId && showStandings(board),
        round: () => loadEventAndRounds().catch(() => {}),
        event: () => loadEventAndRounds().catch(() => {}),
      },
    });
    view.timer = setInterval(() => Promise.all([loadCounts(), loadMessages()]).catch(() => {}), 5000);
  }
  $("events-view").hidden = true;
  $("event-view").hidden = false;
  $("invite-result").hidden = true;
  try {
    await loadEvent();
    await Promise.all([loadRounds(), loadArtists(), loadCounts(), loadMessages(), loadStandings()]);
    updateRecipients();
  } catch (error) {
    $("event-action-error").textContent = problem(error);
  }
}

async function loadEvent() {
  const event = await session.call("GET", `/events/${view.eventId}`);
  view.event = event;
  $("event-heading").textContent = event.title;
  $("event-status").textContent = event.status;
  $("event-status").className = `pill ${event.status}`;
  $("event-keyword").textContent = `Text ${event.keyword} to join`;
  $("screen-link").href = `/e/${event.id}`;
  $("join-link").href = `/j/${encodeURIComponent(event.keyword)}`;
  for (const button of $("lifecycle").querySelectorAll("button")) {
    button.disabled = !LIFECYCLE[button.dataset.action].includes(event.status);
  }
}

$("lifecycle").addEventListener("click", async (clicked) => {
  const action = clicked.target.closest("button")?.dataset.action;
  if (!action) return;
  $("event-action-error").textContent = "";
  try {
    await session.call("POST", `/events/${view.eventId}/${action}`);
    await loadEventAndRounds();
  } catch (error) {
    $("event-action-error").textContent = problem(error);
  }
});

// the rounds' buttons follow the event's status: the event first, then its rounds (side by side, the
// rounds could be drawn with the status from before, their buttons disabled on a live event)
async function loadEventAndRounds() {
  await loadEvent();
  await loadRounds();
}

async function loadRounds() {
  const page = await session.call("GET", `/events/${view.eventId}/rounds?limit=100`);
  const live = view.event && view.event.status === "live";
  $("rounds").replaceChildren(
    ...page.items.map((round) => {
      const act = round.status === "pending" ? "open" : round.status === "open" ? "close" : null;
      const label = act === "open" ? `Open round ${round.number}` : `Close round ${round.number}`;
      return element(
        "tr",
        {},
        element("td", {}, String(round.number)),
        element("td", {}, round.name),
        element("td", {}, element("span", { className: `pill ${round.status}` }, round.status)),
        element(
          "td",
          {},
          act
            ? element("button", { type: "button", disabled: !live, onclick: () => roundAction(round.number, act) }, label)
            : "",
        ),
      );
    }),
  );
}

async function roundAction(number, action) {
  $("round-error").textContent = "";
  try {
    await session.call("POST", `/events/${view.eventId}/rounds/${number}/${action}`);
    await loadRounds();
    await loadStandings();
  } catch (error) {
    $("round-error").textContent = problem(error);
  }
}

async function loadStandings() {
  try {
    showStandings(await session.call("GET", `/events/${view.eventId}/leaderboard`));
  } catch (error) {
    $("standings").replaceChildren();
    $("count-votes").textContent = "–";
  }
}

function showStandings(board) {
  $("count-votes").textContent = String(board.totalVotes);
  $("standings").replaceChildren(
    ...board.standings.map((s) =>
      element("li", {}, element("span", {}, s.name), element("span", { className: "num" }, String(s.votes))),
    ),
  );
}

async function loadCounts() {
  const base = `/events/${view.eventId}/attendees?limit=1`;
  const [joined, confirmed] = await Promise.all([
    session.call("GET", base),
    session.call("GET", `${base}&confirmed=true`),
  ]);
  $("count-joined").textContent = String(joined.total);
  $("count-confirmed").textContent = String(confirmed.total);
}

// --- artists ----------------------------------------------------------------------------------------------

async function loadArtists() {
  const page = await session.call("GET", `/events/${view.eventId}/artists?limit=500`);
  $("artists").replaceChildren(
    ...page.items.map((artist) =>
      element(
        "tr",
        {},
        element("td", {}, artist.voteCode),
        element("td", {}, artist.name),
        element("td", {}, element("span", { className: `pill ${artist.inviteStatus}` }, artist.inviteStatus), ` · ${artist.status}`),
        element(
          "td",
          {},
          artist.inviteStatus !== "accepted"
            ? element("button", { type: "button", onclick: () => answerFor(artist, "accept") }, `Accept for ${artist.name}`)
            : element("button", { type: "button", className: "secondary", onclick: () => answerFor(artist, "decline") }, `Remove ${artist.name}`),
        ),
      ),
    ),
  );
}

async function answerFor(artist, action) {
  $("invite-error").textContent = "";
  try {
    await session.call("POST", `/events/${view.eventId}/artists/${artist.artistId}/${action}`);
    await loadArtists();
  } catch (error) {
    $("invite-error").textContent = problem(error);
  }
}

$("invite-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  $("invite-error").textContent = "";
  const body = { name: $("artist-name").value.trim() };
  if ($("artist-email").value.trim()) body.email = $("artist-email").value.trim();
  try {
    const invited = await session.call("POST", `/events/${view.eventId}/artists`, { body });
    $("invite-form").reset();
    $("invite-url").value = invited.inviteUrl;
    $("invite-result").hidden = false;
    await loadArtists();
  } catch (error) {
    $("invite-error").textContent = problem(error);
  }
});

$("copy-invite").addEventListener("click", async () => {
  $("invite-url").select();
  try {
    await navigator.clipboard.writeText($("invite-url").value);
  } catch (error) {
    document.execCommand("copy");
  }
});

// --- messages ----------------------------------------------------------------------------------------------

function broadcastBody() {
  const body = { channel: $("bc-channel").value, messageType: $("bc-type").value, audience: $("bc-audience").value };
  const text = $("bc-body").value.trim();
  if (text) body.body = text;
  return body;
}

// Whether this server answers `POST …/messages?dryRun=true` (a count, nothing queued): read from its OpenAPI.
async function supportsDryRun() {
  if (view.dryRun === null) {
    try {
      const response = await fetch("/openapi.json", { credentials: "omit" });
      const spec = await response.json();
      const post = spec.paths["/events/{event_id}/messages"]?.post || {};
      view.dryRun = (post.parameters || []).some((p) => p.name === "dryRun");
    } catch (error) {
      view.dryRun = false;
    }
  }
  return view.dryRun;
}

let recipientsAsked = 0;
async function updateRecipients() {
  const asked = ++recipientsAsked;
  const out = $("bc-recipients");
  const body = broadcastBody();
  let text;
  try {
    if (await supportsDryRun()) {
      const plan = await session.call("POST", `/events/${view.eventId}/messages?dryRun=true`, { body });
      const count = typeof plan.recipients === "number" ? plan.recipients : plan.queued;
      text = `Will reach ${count} attendee${count === 1 ? "" : "s"}`;
      if (plan.totalSegments !== undefined) text += ` · ${plan.totalSegments} SMS segments`;
      if (plan.estimatedCost) text += ` · about ${plan.estimatedCost.amount} ${plan.estimatedCost.currency}`;
    } else if (body.audience === "all" || body.audience === "confirmed") {
      const filter = body.audience === "confirmed" ? "&confirmed=true" : "";
      const page = await session.call("GET", `/events/${view.eventId}/attendees?limit=1&optedOut=false${filter}`);
      text = `Will reach ${page.total} attendee${page.total === 1 ? "" : "s"}`;
      if (body.channel === "email") text += " (those with an e-mail address)";
    } else {
      text = "Recipients are counted when the message is sent.";
    }
  } catch (error) {
    text = `Recipients could not be counted: ${problem(error)}`;
  }
  if (asked === recipientsAsked) out.textContent = text;
}

for (const id of ["bc-channel", "bc-type", "bc-audience"]) $(id).addEventListener("change", updateRecipients);

$("broadcast-form").addEventListener("submit", async (submitted) => {
  submitted.preventDefault();
  $("bc-error").textContent = "";
  $("bc-result").textContent = "";
  const body = broadcastBody();
  if (body.messageType === "CUSTOM" && !body.body) {
    $("bc-error").textContent = "Write the text of the message.";
    return;
  }
  $("bc-send").disabled = true;
  try {
    const sent = await session.call("POST", `/events/${view.eventId}/messages`, {
      body,
      headers: { "Idempotency-Key": view.broadcastKey },
    });
    view.broadcastKey = freshToken(); // the next message is a new one; a retry of this one reused the key
    const skipped = sent.skipped.optedOut + sent.skipped.noAddress;
    $("bc-result").textContent = `Queued ${sent.queued} message${sent.queued === 1 ? "" : "s"}${skipped ? `, skipped ${skipped}` : ""}.`;
    $("bc-body").value = "";
    await loadMessages();
  } catch (error) {
    $("bc-error").textContent = problem(error);
  } finally {
    $("bc-send").disabled = false;
  }
});

async function loadMessages() {
  const history = await session.call("GET", `/events/${view.eventId}/messages?limit=20`);
  const rate = history.stats.deliveryRate;
  $("message-stats").textContent =
    `${history.stats.total} message${history.stats.total === 1 ? "" : "s"} · ` +
    `${history.stats.sms.total} SMS, ${history.stats.email.total} e-mail` +
    (rate === null || rate === undefined ? "" : ` · ${Math.round(rate * 100)}% delivered`);
  $("messages").replaceChildren(
    ...history.items.map((m) =>
      element(
        "tr",
        {},
        element("td", {}, when(m.sentAt || m.createdAt)),
        element("td", {}, m.messageType),
        element("td", {}, m.channel),
        element("td", {}, m.recipient || ""),
        element("td", {}, element("span", { className: `pill ${m.status}` }, m.status)),
        element("td", { className: "message-body" }, m.body),
      ),
    ),
  );
}

// --- reports -------------------------------------------------------------------------------------------------

$("reports").addEventListener("click", async (clicked) => {
  const button = clicked.target.closest("button");
  if (!button) return;
  $("report-error").textContent = "";
  const { dataset, format } = button.dataset;
  try {
    const response = await session.call("GET", `/events/${view.eventId}/report?format=${format}&dataset=${dataset}`, {
      raw: true,
    });
    const blob = await response.blob();
    const disposition = response.headers.get("Content-Disposition") || "";
    const named = disposition.match(/filename="?([^";]+)"?/);
    const link = element("a", { href: URL.createObjectURL(blob), download: named ? named[1] : `event-${view.eventId}-${dataset}.${format}` });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  } catch (error) {
    $("report-error").textContent =
      error instanceof ApiError && error.status === 404 && !error.problem.detail?.includes("event")
        ? "Reports are not available on this server yet."
        : problem(error);
  }
});

showSignIn();
