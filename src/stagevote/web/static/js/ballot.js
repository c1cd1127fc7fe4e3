// The fan ballot: the open round's artists as big buttons; one tap is one vote, a double tap counts once.
import { ApiError, call, element, freshToken } from "./api.js";
import { translator } from "./i18n.js";
import { connectLive } from "./live.js";

// The token is the last segment of this page's URL; it is never written into the page.
const ballotToken = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
const main = document.getElementById("ballot");
const status = document.getElementById("status");
const list = document.getElementById("artists");
const note = document.getElementById("note");
const roundName = document.getElementById("round-name");

let t = translator(document.documentElement.lang);
// A second tap this soon after the first is the other half of a double tap, however fast the
// first vote came back: on a quick network the first answer can arrive between the two taps.
const DOUBLE_TAP_MS = 500;
let lastTapAt = -Infinity;

const state = {
  ballot: null,
  event: null,
  rounds: [],
  artists: [],
  pending: false,
  votes: new Map(), // round number → artistIds voted for from this page
  outcome: null, // the last answer to show: {key, vars, round}
};

function openRound() {
  return state.rounds.find((r) => r.status === "open") || null;
}

function say(key, vars = {}, kind = "info") {
  status.textContent = t(key, vars);
  status.dataset.kind = kind;
}

async function load() {
  const eventId = state.ballot.eventId;
  const [event, rounds, artists] = await Promise.all([
    call("GET", `/events/${eventId}`),
    call("GET", `/events/${eventId}/rounds?limit=100`),
    call("GET", `/events/${eventId}/artists?limit=500`),
  ]);
  state.event = event;
  state.rounds = rounds.items;
  state.artists = artists.items;
  render();
}

function candidates(round) {
  const config = state.event.voteConfig.rounds.find((r) => r.number === round.number);
  if (!config || !config.artistIds) return state.artists;
  return state.artists.filter((a) => config.artistIds.includes(a.artistId));
}

function render() {
  const event = state.event;
  document.getElementById("event-title").textContent = event.title;
  document.title = event.title;
  const round = openRound();
  const live = event.status === "live";
  roundName.textContent = round ? t("ballot.round", { n: round.number, name: round.name }) : "";
  list.replaceChildren();
  note.textContent = "";
  if (state.outcome && (!round || state.outcome.round !== round.number)) state.outcome = null;

  if (!state.ballot.mayVote) {
    main.dataset.state = "refused";
    return say("ballot.cannot", { reason: state.ballot.reason }, "error");
  }
  if (event.status === "closed" || event.status === "archived") {
    main.dataset.state = "over";
    return say("ballot.over");
  }
  if (!live) {
    main.dataset.state = "waiting";
    return say("ballot.notStarted");
  }
  if (!round) {
    const closed = state.rounds.filter((r) => r.status === "closed");
    if (!closed.length) {
      main.dataset.state = "waiting";
      return say("ballot.notStarted");
    }
    main.dataset.state = "closed";
    const last = closed[closed.length - 1];
    return say("ballot.closedWaiting", { n: last.number, name: last.name });
  }
  main.dataset.state = "open";
  const mine = state.votes.get(round.number) || [];
  for (const artist of candidates(round)) {
    const chosen = mine.includes(artist.artistId);
    const button = element(
      "button",
      {
        type: "button",
        className: chosen ? "artist chosen" : "artist",
        dataset: { artistId: String(artist.artistId) },
        "aria-pressed": chosen ? "true" : "false",
        disabled: state.pending,
        onclick: (click) => {
          if (click.detail > 1) return; // the browser counts this click as the second of a double click
          vote(round.number, artist);
        },
      },
      element(
        "span",
        { className: "artist-who" },
        element("span", { className: "artist-name" }, artist.name),
        chosen ? element("span", { className: "artist-mark" }, t("ballot.yourVote")) : null,
      ),
      element("span", { className: "artist-code" }, t("ballot.code", { code: artist.voteCode })),
    );
    list.append(element("li", {}, button));
  }
  if (event.voteConfig.smsVoting) note.textContent = t("ballot.smsHint");
  if (state.outcome) {
    if (state.outcome.receipt) note.textContent = t("ballot.receipt", { receipt: state.outcome.receipt });
    return say(state.outcome.key, state.outcome.vars, state.outcome.kind);
  }
  const perRound = event.voteConfig.votesPerRound;
  say(perRound > 1 ? "ballot.tapMany" : "ballot.tap", { n: perRound });
}

async function vote(roundNumber, artist) {
  const now = performance.now();
  if (state.pending || now - lastTapAt < DOUBLE_TAP_MS) return; // the second tap of a double tap
  lastTapAt = now;
  state.pending = true;
  for (const button of list.querySelectorAll("button")) button.disabled = true;
  say("ballot.sending");
  const body = { round: roundNumber, artistId: artist.artistId, token: freshToken() };
  try {
    let answer;
    try {
      answer = await castVote(body);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 0) throw error;
      answer = await castVote(body); // the network failed: the same token again counts at most once
    }
    const config = state.event.voteConfig;
    const before = state.votes.get(roundNumber) || [];
    const changed = config.allowVoteChange && before.length >= config.votesPerRound;
    state.votes.set(roundNumber, [...before, artist.artistId].slice(-config.votesPerRound));
    state.outcome = {
      key: changed ? "ballot.changed" : "ballot.voted",
      vars: { name: artist.name },
      round: roundNumber,
      kind: "ok",
      receipt: answer && answer.receipt,
    };
  } catch (error) {
    state.outcome = await explain(error, roundNumber);
  } finally {
    state.pending = false;
  }
  render();
}

function castVote(body) {
  return call("POST", `/events/${state.ballot.eventId}/vote`, { body, token: ballotToken });
}

async function explain(error, roundNumber) {
  if (!(error instanceof ApiError)) return { key: "ballot.error", vars: { detail: String(error) }, round: roundNumber, kind: "error" };
  if (error.status === 0) return { key: "ballot.offline", round: roundNumber, kind: "error" };
  if (error.status === 409 && error.slug === "quota-used") return { key: "ballot.already", round: roundNumber, kind: "warn" };
  if (error.status === 409 || error.status === 422) {
    await load().catch(() => {}); // the round closed, or the line-up changed: show what is true now
    const still = openRound();
    if (!still || still.number !== roundNumber) return null;
    return { key: "ballot.error", vars: { detail: error.message }, round: roundNumber, kind: "error" };
  }
  if (error.status === 401) return { key: "ballot.invalid", round: roundNumber, kind: "error" };
  if (error.status === 403) return { key: "ballot.cannot", vars: { reason: error.message }, round: roundNumber, kind: "error" };
  return { key: "ballot.error", vars: { detail: error.message }, round: roundNumber, kind: "error" };
}

let polling = null;
function pollWithoutFeed() {
  if (!polling) polling = setInterval(() => load().catch(() => {}), 5000);
}

async function start() {
  try {
    state.ballot = await call("GET", "/ballot", { token: ballotToken });
  } catch (error) {
    main.dataset.state = "invalid";
    return say(error instanceof ApiError && error.status === 401 ? "ballot.invalid" : "ballot.offline", {}, "error");
  }
  t = translator(state.ballot.language);
  document.documentElement.lang = state.ballot.language;
  say("ballot.loading");
  try {
    await load();
  } catch (error) {
    return say("ballot.error", { detail: error.message }, "error");
  }
  connectLive({
    eventId: state.ballot.eventId,
    topics: ["round", "event"], // a ballot needs no live standings
    onStatus(connected, reconnected) {
      if (connected && reconnected) load().catch(() => {});
    },
    onAck(ack) {
      if (!ack.ok) pollWithoutFeed(); // refused (a server that ignores topics, standings hidden): ask now and then
    },
    handlers: {
      round: () => load().catch(() => {}),
      event: () => load().catch(() => {}),
    },
  });
}

start();
