// The `/live` Socket.IO feed: subscribe on every (re)connect, tell the page when it is connected or not.
import { io } from "../vendor/socket.io-client/socket.io.esm.min.js";

const ACK_TIMEOUT_MS = 8000;

export function connectLive({ eventId, topics, token, onAck, onStatus, handlers = {} }) {
  const socket = io("/live", {
    path: "/socket.io",
    transports: ["websocket", "polling"],
    tryAllTransports: true,
    reconnectionDelay: 500,
    reconnectionDelayMax: 3000,
  });

  function subscribe() {
    const payload = { eventId };
    const wanted = typeof topics === "function" ? topics() : topics;
    if (wanted) payload.topics = wanted;
    const bearer = typeof token === "function" ? token() : token;
    if (bearer) payload.token = bearer;
    socket.timeout(ACK_TIMEOUT_MS).emit("subscribe", payload, (error, ack) => {
      if (error) {
        if (socket.connected) setTimeout(subscribe, 1000); // no answer in time: ask again
        return;
      }
      onAck(ack || { ok: false, status: 0, title: "no answer" });
    });
  }

  let connectedBefore = false;
  socket.on("connect", () => {
    if (onStatus) onStatus(true, connectedBefore);
    connectedBefore = true;
    subscribe();
  });
  socket.on("disconnect", (reason) => {
    if (onStatus) onStatus(false);
    if (reason === "io server disconnect") socket.connect(); // the server let go of us: come back anyway
  });
  for (const [name, handler] of Object.entries(handlers)) socket.on(name, handler);
  return { socket, resubscribe: () => socket.connected && subscribe() };
}
