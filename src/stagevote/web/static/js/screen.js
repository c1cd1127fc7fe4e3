// The venue screen: the round's standings as bars that grow and re-sort as `leaderboard` emits arrive.
import { ApiError, call, element } from "./api.js";
import { connectLive } from "./live.js";

const eventId = Number(document.body.dataset.eventId);
const main = document.getElementById("screen");
const bars = document.getElementById("bars");
const roundName = document.getElementById("round-name");
const roundState = document.getElementById("round-state");
const message = document.getElementById("board-message");
const total = document.getElementById("total");
const connection = document.getElementById("connection");
const BOARD_HEIGHT = 660; // px of the 1080 the bars may take

// Standings while the public may see them; otherwise round and event changes only.
let wantStandings = true;
let live = null;

const state = { event: null, rounds: [], artists: new Map(), board: null, hidden: false, rows: new Map() };

function currentRound() {
  const open = state.rounds.find((r) => r.status === "open");
  if (open) return open;
  const started = state.rounds.filter((r) => r.status === "closed" || r.openedAt);
  return started.length ? started[started.length - 1] : state.rounds[0] || null;
}

async function loadEvent() {
  state.event = await call("GET", `/events/${eventId}`);
  document.getElementById("event-title").textContent = state.event.title;
  document.getElementById("event-venue").textContent = state.event.venue || "";
}

async function loadRounds() {
  state.rounds = (await call("GET", `/events/${eventId}/rounds?limit=100`)).items;
}

async function loadArtists() {
  const page = await call("GET", `/events/${eventId}/artists?limit=500`);
  state.artists = new Map(page.items.map((a) => [a.artistId, a]));
}

async function loadBoard() {
  try {
    state.board = await call("GET", `/events/${eventId}/leaderboard`);
    state.hidden = false;
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 403) throw error;
    state.board = null;
    state.hidden = true; // the organizer keeps the standings from the public for now
  }
}

async function resync() {
  try {
    await Promise.all([loadEvent(), loadRounds(), loadArtists()]);
    await loadBoard();
  } catch (error) {
    showMessage(error.message);
  }
  render();
  if (!state.hidden && !wantStandings && live) {
    wantStandings = true; // the standings became public (a round closed): follow them live again
    live.resubscribe();
  }
}

function showMessage(text) {
  message.hidden = !text;
  message.textContent = text || "";
}

function render() {
  const event = state.event;
  if (!event) return;
  const round = currentRound();
  const visibility = event.voteConfig.leaderboardVisibility;
  roundName.textContent = round ? round.name : "";
  const over = event.status === "closed" || event.status === "archived";
  let view = "live";
  let stateText = "";
  if (over) {
    view = "results";
    stateText = "Final results";
  } else if (event.status !== "live") {
    view = "waiting";
    stateText = "Voting opens soon";
  } else if (round && round.status === "open") {
    stateText = "Voting is open";
  } else if (round && round.status === "closed") {
    stateText = "Voting closed";
  } else {
    stateText = "Next round soon";
  }
  if (state.hidden || !state.board) view = over ? "results-hidden" : "hidden";
  main.dataset.view = view;
  roundState.textContent = stateText;
  if (view === "hidden" || view === "results-hidden") {
    showMessage(
      over
        ? "Thank you for voting! The results are announced on stage."
        : visibility === "after_close"
          ? "Results when the round closes."
          : "Results at the end.",
    );
    renderLineUp(round);
    total.textContent = "";
    return;
  }
  showMessage("");
  renderBoard(state.board);
}

function rowFor(artistId, name) {
  let row = state.rows.get(artistId);
  if (!row) {
    const fill = element("span", { className: "fill" });
    row = element(
      "li",
      { className: "row", dataset: { artistId: String(artistId) } },
      element("span", { className: "rank" }),
      element("span", { className: "code" }),
      element("span", { className: "name" }),
      element("span", { className: "track" }, fill),
      element("span", { className: "votes" }),
    );
    bars.append(row);
    state.rows.set(artistId, row);
  }
  row.querySelector(".name").textContent = name;
  const artist = state.artists.get(artistId);
  row.querySelector(".code").textContent = artist ? `VOTE ${artist.voteCode}` : "";
  return row;
}

function layout(count) {
  const height = Math.max(56, Math.min(150, Math.floor(BOARD_HEIGHT / Math.max(count, 1))));
  bars.style.setProperty("--row", `${height}px`);
  bars.style.height = `${height * count}px`;
  return height;
}

function removeRowsExcept(keep) {
  for (const [artistId, row] of state.rows) {
    if (!keep.has(artistId)) {
      row.remove();
      state.rows.delete(artistId);
    }
  }
}

function renderBoard(board) {
  const standings = board.standings;
  const height = layout(standings.length);
  const most = Math.max(1, ...standings.map((s) => s.votes));
  removeRowsExcept(new Set(standings.map((s) => s.artistId)));
  standings.forEach((standing, index) => {
    const row = rowFor(standing.artistId, standing.name);
    row.classList.remove("no-count");
    row.style.transform = `translateY(${index * height}px)`;
    row.querySelector(".rank").textContent = String(standing.rank);
    row.querySelector(".fill").style.transform = `scaleX(${standing.votes / most})`;
    row.querySelector(".votes").textContent = String(standing.votes);
    row.classList.toggle("leader", standing.rank === 1 && standing.votes > 0);
    row.setAttribute(
      "aria-label",
      `${standing.rank}. ${standing.name}, ${row.querySelector(".code").textContent}: ${standing.votes} votes`,
    );
  });
  total.textContent = `${board.totalVotes} vote${board.totalVotes === 1 ? "" : "s"}`;
}

// Without standings (hidden for now): the line-up and its codes, never a count.
function renderLineUp(round) {
  const config = round ? state.event.voteConfig.rounds.find((r) => r.number === round.number) : null;
  const ids = config && config.artistIds ? config.artistIds.filter((id) => state.artists.has(id)) : [...state.artists.keys()];
  const height = layout(ids.length);
  removeRowsExcept(new Set(ids));
  ids.forEach((artistId, index) => {
    const artist = state.artists.get(artistId);
    const row = rowFor(artistId, artist.name);
    row.classList.add("no-count");
    row.classList.remove("leader");
    row.style.transform = `translateY(${index * height}px)`;
    row.querySelector(".rank").textContent = "";
    row.querySelector(".fill").style.transform = "scaleX(0)";
    row.querySelector(".votes").textContent = "";
    row.setAttribute("aria-label", `${artist.name}, VOTE ${artist.voteCode}`);
  });
}

function onLeaderboard(board) {
  const round = currentRound();
  if (round && board.round !== round.number) return; // an older round's late update
  if (board.standings.some((s) => !state.artists.has(s.artistId))) loadArtists().then(render, () => {});
  state.board = board;
  state.hidden = false;
  render();
}

let polling = null;
function pollWithoutFeed() {
  // the feed refused us (standings hidden, on a server without topics): follow rounds by asking
  if (!polling) polling = setInterval(resync, 5000);
}

live = connectLive({
  eventId,
  topics: () => (wantStandings ? undefined : ["round", "event"]),
  onStatus(connected, reconnected) {
    connection.hidden = connected;
    if (connected && reconnected) resync(); // back after a drop: re-sync from the leaderboard endpoint
  },
  onAck(ack) {
    if (ack.ok) {
      if (ack.leaderboard) onLeaderboard(ack.leaderboard);
      return;
    }
    if (ack.status === 403 && wantStandings) {
      wantStandings = false;
      state.hidden = true;
      render();
      live.resubscribe();
    } else if (ack.status === 403) {
      pollWithoutFeed();
    } else {
      showMessage(ack.title || "This event cannot be shown.");
    }
  },
  handlers: {
    leaderboard: onLeaderboard,
    round: () => resync(),
    event: () => resync(),
  },
});

resync();
