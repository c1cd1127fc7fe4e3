// The landing page: events on now or coming up, with their venue screen and web join.
import { call, element } from "./api.js";

const list = document.getElementById("events");
const status = document.getElementById("events-status");

async function show() {
  try {
    const [live, published] = await Promise.all([
      call("GET", "/events?status=live&limit=20"),
      call("GET", "/events?status=published&limit=20"),
    ]);
    const events = [...live.items, ...published.items];
    status.textContent = events.length ? "" : "No event is live or published yet. Organizers start in the console.";
    status.hidden = events.length > 0;
    for (const event of events) {
      list.append(
        element(
          "li",
          {},
          element("strong", {}, event.title),
          ` (${event.status}) · `,
          element("a", { href: `/e/${event.id}` }, "venue screen"),
          " · ",
          element("a", { href: `/j/${encodeURIComponent(event.keyword)}` }, `join ${event.keyword}`),
        ),
      );
    }
  } catch (error) {
    status.textContent = `Events could not be loaded: ${error.message}`;
  }
}

show();
