// One WebSocket per tab, kept open for a ChatClient (sync.js): reconnects with exponential backoff
// and full jitter (0.5 s doubling to 15 s, so a restarted server is not stampeded), ticks the
// client every second, and drops a connection the client finds dead (no pong). It owns the
// status: any frame received on the open socket means connected, whatever the browser said
// about the network meanwhile (a short drop can leave the socket alive).
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const TICK_MS = 1000;

// client: a ChatClient (sync.js). onStatus(kind): "connecting" | "connected" |
// "reconnecting" | "offline". Returns {send(frame) → bool, stop()}.
export function keepOpen(client, { onStatus = () => {} } = {}) {
  const state = { socket: null, attempts: 0, timer: null, stopped: false, status: null };

  function report(kind) {
    state.status = kind;
    onStatus(kind);
  }

  function connect() {
    state.timer = null;
    if (state.stopped || state.socket) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/ws/chat/`);
    state.socket = socket;
    socket.addEventListener("open", () => {
      if (state.socket !== socket) return;
      state.attempts = 0;
      client.connected();
    });
    socket.addEventListener("message", (event) => {
      if (state.socket !== socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      if (state.status !== "connected") report("connected");
      client.receive(frame);
    });
    socket.addEventListener("close", () => drop(socket));
  }

  // Forget a socket (closed, or found dead) and plan the next attempt.
  function drop(socket) {
    if (state.socket !== socket) return;
    state.socket = null;
    client.disconnected();
    if (state.stopped) return;
    report(navigator.onLine === false ? "offline" : "reconnecting");
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempts);
    state.attempts += 1;
    clearTimeout(state.timer);
    state.timer = setTimeout(connect, Math.random() * ceiling);
  }

  setInterval(() => {
    if (client.tick() === "reconnect" && state.socket) {
      // No answer to a ping: the connection is half-open. Do not wait for TCP to notice.
      const socket = state.socket;
      drop(socket);
      socket.close();
    }
  }, TICK_MS);

  window.addEventListener("offline", () => {
    if (!state.stopped) report("offline");
  });
  window.addEventListener("online", () => {
    if (state.stopped) return;
    if (state.socket && state.socket.readyState === WebSocket.OPEN) {
      // The socket may have survived the drop: ask now rather than after pingAfterMs of
      // quiet. The pong brings the status back; no pong, and the tick reconnects.
      client.ping();
    } else if (!state.socket) {
      clearTimeout(state.timer);
      connect();
    }
  });

  report("connecting");
  connect();

  return {
    send(frame) {
      if (state.socket && state.socket.readyState === WebSocket.OPEN) {
        state.socket.send(JSON.stringify(frame));
        return true;
      }
      return false;
    },
    // Close for good (the room was closed, the session ended).
    stop() {
      state.stopped = true;
      clearTimeout(state.timer);
      const socket = state.socket;
      state.socket = null;
      if (socket) socket.close();
    },
  };
}

