// One connection per tab, kept open for a ChatClient (sync.js): a WebSocket, or where a proxy
// blocks WebSockets the HTTP fallback (fallback.js: an event stream or long-polls down, POSTs
// up).
//
// It reconnects with exponential backoff and full jitter (0.5 s doubling to 15 s, so a
// restarted server is not stampeded), ticks the client every second, and drops a connection
// the client finds dead (no pong). The choice of transport, afresh on every page load, in
// modes: "websocket" first; after two WebSocket handshakes in a row fail (closed before
// `open`, or no `open` within 3 s), "stream"; a stream that fails before its session (an
// error, or none within 10 s: a proxy that buffers it), "poll"; a poll connection that fails
// to open means the server is down, not the socket blocked: "websocket" again. A connection
// that opened and then dropped is followed by one of the same mode. While on the fallback a
// WebSocket is tried in the background when a stream or poll connection opens and every 30 s
// or so; if one opens, the fallback connection is closed and the client told disconnected()
// then connected(), so it resyncs over the socket as after any reconnect. A page going away
// closes its fallback connection, so a poll connection ends on the server at once.
//
// It owns the status: any frame received on the open connection means connected, whatever the
// browser said about the network meanwhile (a short drop can leave the socket alive).
//
// No DOM beyond browserEnv(): the browser's constructors, timers and events are passed in, so
// Node runs this file in the tests with fakes.
import { openPoll, openStream } from "./fallback.js";

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const TICK_MS = 1000;
export const HANDSHAKE_TIMEOUT_MS = 3000; // a socket not open by then has failed its handshake
export const FAILED_HANDSHAKES = 2; // in a row, before falling back to HTTP
export const PROBE_EVERY_MS = 30000; // on the fallback: try a WebSocket this often (± 25 %)
const OPEN = { websocket: openSocket, stream: openStream, poll: openPoll };

function cookie(name) {
  const prefix = `${name}=`;
  const found = document.cookie.split("; ").find((item) => item.startsWith(prefix));
  return found ? decodeURIComponent(found.slice(prefix.length)) : "";
}

// The page's own: its WebSocket, EventSource, fetch and timers, its CSRF token, its events.
export function browserEnv() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const meta = document.querySelector('meta[name="csrf-token"]');
  return {
    WebSocket: window.WebSocket,
    EventSource: window.EventSource,
    fetch: (url, init) => window.fetch(url, init),
    AbortController: window.AbortController,
    setTimeout: (fn, ms) => window.setTimeout(fn, ms),
    clearTimeout: (id) => window.clearTimeout(id),
    setInterval: (fn, ms) => window.setInterval(fn, ms),
    clearInterval: (id) => window.clearInterval(id),
    now: () => Date.now(),
    random: () => Math.random(),
    socketUrl: `${scheme}://${location.host}/ws/chat/`,
    streamUrl: "/fallback/chat/",
    sendUrl: "/fallback/chat/send/",
    pollUrl: "/fallback/chat/poll/",
    // The cookie first: a login in another tab rotates it, and the page's copy goes stale.
    csrfToken: () => cookie("csrftoken") || (meta ? meta.content : ""),
    offline: () => navigator.onLine === false,
    listen: (type, fn) => window.addEventListener(type, fn),
  };
}

// A WebSocket as a connection with the shape of fallback.js's: on.open/frame/close called
// only while it is alive, close() at most once and never after conn.close().
export function openSocket(env, on) {
  const conn = { kind: "websocket", opened: false, alive: true, send, close };
  const socket = new env.WebSocket(env.socketUrl);
  const handshakeTimer = env.setTimeout(fail, HANDSHAKE_TIMEOUT_MS);

  socket.addEventListener("open", () => {
    if (!conn.alive) return;
    env.clearTimeout(handshakeTimer);
    conn.opened = true;
    on.open();
  });
  socket.addEventListener("message", (event) => {
    if (!conn.alive) return;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (e) {
      return;
    }
    on.frame(frame);
  });
  socket.addEventListener("close", fail);

  function send(frame) {
    if (!conn.alive || socket.readyState !== 1) return false; // WebSocket.OPEN
    socket.send(JSON.stringify(frame));
    return true;
  }

  function end() {
    conn.alive = false;
    env.clearTimeout(handshakeTimer);
    socket.close();
  }

  function fail() {
    if (!conn.alive) return;
    end();
    on.close();
  }

  function close() {
    if (conn.alive) end();
  }

  return conn;
}

// client: a ChatClient (sync.js). onStatus(kind, transport): kind "connecting" | "connected" |
// "reconnecting" | "offline"; transport "websocket" | "http" (a stream or polls) when connected,
// else null.
// env: browserEnv()'s shape. Returns {send(frame) → bool, stop()}.
export function keepOpen(client, { onStatus = () => {}, env = browserEnv() } = {}) {
  const state = {
    conn: null, // the connection the client uses, open or opening
    probe: null, // on the fallback: a WebSocket tried in the background
    mode: "websocket", // the transport of the next attempt: a key of OPEN
    failedHandshakes: 0, // WebSocket handshakes failed in a row
    attempts: 0, // since the last connection opened, for the backoff
    timer: null,
    probeTimer: null,
    stopped: false,
    status: null,
    transport: null,
  };

  function report(kind, transport = null) {
    if (state.status === kind && state.transport === transport) return;
    state.status = kind;
    state.transport = transport;
    onStatus(kind, transport);
  }

  function start(open) {
    const conn = open(env, {
      open: () => opened(conn),
      frame: (frame) => heard(conn, frame),
      close: () => lost(conn),
    });
    return conn;
  }

  function connect() {
    state.timer = null;
    if (state.stopped || state.conn) return;
    state.conn = start(OPEN[state.mode]);
  }

  function opened(conn) {
    if (conn === state.probe) {
      upgrade(conn);
      return;
    }
    if (conn !== state.conn) return;
    state.attempts = 0;
    if (conn.kind === "websocket") state.failedHandshakes = 0;
    client.connected();
    if (conn.kind === "http") planProbe(0);
  }

  function heard(conn, frame) {
    if (conn !== state.conn) return;
    report("connected", conn.kind);
    client.receive(frame);
  }

  // Forget a connection (closed, or found dead) and plan the next attempt.
  function lost(conn) {
    if (conn === state.probe) {
      state.probe = null;
      planProbe(jittered(PROBE_EVERY_MS));
      return;
    }
    if (conn !== state.conn) return;
    state.conn = null;
    if (conn.opened) client.disconnected();
    else if (state.mode === "websocket") {
      state.failedHandshakes += 1;
      if (state.failedHandshakes >= FAILED_HANDSHAKES && env.EventSource) state.mode = "stream";
    } else if (state.mode === "stream") {
      // No session came down the stream: a proxy may be holding it until it ends.
      state.mode = "poll";
    } else {
      // No transport answers: the server is down or unreachable, not just its sockets.
      state.mode = "websocket";
      state.failedHandshakes = 0;
      stopProbing();
    }
    if (state.stopped) return;
    report(env.offline() ? "offline" : "reconnecting");
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** state.attempts);
    state.attempts += 1;
    env.clearTimeout(state.timer);
    state.timer = env.setTimeout(connect, env.random() * ceiling);
  }

  // A background WebSocket opened: move the client onto it. The fallback connection is closed,
  // so the server drops it; the client rejoins its rooms with `since` over the socket.
  function upgrade(socket) {
    state.probe = null;
    stopProbing();
    env.clearTimeout(state.timer);
    state.timer = null;
    const old = state.conn;
    state.conn = socket;
    state.mode = "websocket";
    state.failedHandshakes = 0;
    state.attempts = 0;
    if (old) {
      old.close();
      if (old.opened) client.disconnected();
    }
    client.connected();
  }

  function planProbe(delay) {
    env.clearTimeout(state.probeTimer);
    state.probeTimer = env.setTimeout(probe, delay);
  }

  function probe() {
    state.probeTimer = null;
    if (state.stopped || state.mode === "websocket" || state.probe) return;
    state.probe = start(openSocket);
  }

  function stopProbing() {
    env.clearTimeout(state.probeTimer);
    state.probeTimer = null;
    if (state.probe) {
      const probing = state.probe;
      state.probe = null;
      probing.close();
    }
  }

  function jittered(ms) {
    return ms * (0.75 + env.random() / 2);
  }

  const ticker = env.setInterval(() => {
    if (client.tick() === "reconnect" && state.conn) {
      // No answer to a ping: the connection is half-open. Do not wait for TCP to notice.
      const conn = state.conn;
      conn.close();
      lost(conn);
    }
  }, TICK_MS);

  // The page is going away (closed, reloaded, left). A socket or a stream ends with it, but a
  // poll connection would linger on the server until idle_timeout, its user shown online:
  // close it, which POSTs X-Chat-Close. Back from the back/forward cache, lost()'s reconnect
  // runs.
  env.listen("pagehide", () => {
    const conn = state.conn;
    if (state.stopped || !conn || conn.kind !== "http") return;
    conn.close();
    lost(conn);
  });
  env.listen("offline", () => {
    if (!state.stopped) report("offline");
  });
  env.listen("online", () => {
    if (state.stopped) return;
    if (state.conn && state.conn.opened) {
      // The connection may have survived the drop: ask now rather than after pingAfterMs
      // of quiet. The pong brings the status back; no pong, and the tick reconnects.
      client.ping();
    } else if (!state.conn) {
      env.clearTimeout(state.timer);
      connect();
    }
  });

  report("connecting");
  connect();

  return {
    send(frame) {
      return state.conn !== null && state.conn.opened && state.conn.send(frame);
    },
    // Close for good (the room was closed, the session ended).
    stop() {
      state.stopped = true;
      env.clearTimeout(state.timer);
      env.clearInterval(ticker);
      stopProbing();
      const conn = state.conn;
      state.conn = null;
      if (conn) conn.close();
    },
  };
}
