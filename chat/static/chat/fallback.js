// The HTTP fallback, for networks whose proxies block WebSockets: the server's frames come down
// a Server-Sent Events stream (GET /fallback/chat/), the client's go up in POSTs
// (/fallback/chat/send/), in order, one POST in flight at a time. One stream is one connection,
// like one socket: when it ends, keepOpen (transport.js) opens a new one with its backoff and
// the ChatClient resyncs. No DOM: the browser's EventSource, fetch and timers are passed in,
// so Node runs this file in the tests. See docs/protocol.md.

export const MAX_BATCH = 50; // frames per POST, the server's limit
export const KEEPALIVE_MS = 20000; // POST `[]` after this long without a POST
export const SESSION_TIMEOUT_MS = 10000; // no `session` event within this: give up on the stream

// env: {EventSource, fetch, setTimeout, clearTimeout, now, streamUrl, sendUrl, csrfToken()}.
// on: {open(), frame(frame), close()}: called only while the connection is alive, so never
// after conn.close(); close() at most once. Returns the connection:
// {kind: "http", opened, send(frame) → bool, close()}.
export function openStream(env, on) {
  const conn = { kind: "http", opened: false, alive: true, send: (f) => posts.send(f), close };
  const posts = postQueue(env, conn, fail);
  const sessionTimer = env.setTimeout(fail, SESSION_TIMEOUT_MS);
  const source = new env.EventSource(env.streamUrl);

  source.addEventListener("session", (event) => {
    if (!conn.alive || conn.opened) return;
    const session = parse(event.data);
    if (!session || typeof session.token !== "string") {
      fail();
      return;
    }
    env.clearTimeout(sessionTimer);
    conn.opened = true;
    posts.start(session);
    on.open();
  });
  source.addEventListener("message", (event) => {
    if (!conn.alive || !conn.opened) return;
    const frame = parse(event.data);
    if (frame !== null) on.frame(frame);
  });
  // The server ended the connection (the socket's close codes; the client's answer is the
  // same whatever the code: a new connection with backoff).
  source.addEventListener("close", fail);
  // A broken or refused stream. EventSource would reconnect by itself, into a new server
  // connection the ChatClient never heard of: closing it leaves that to keepOpen.
  source.addEventListener("error", fail);

  function end() {
    conn.alive = false;
    env.clearTimeout(sessionTimer);
    posts.stop();
    source.close();
  }

  function fail() {
    if (!conn.alive) return;
    end();
    on.close();
  }

  // Close for good; the owner knows, so `on.close` is not called.
  function close() {
    if (conn.alive) end();
  }

  return conn;
}

// The POSTs of one connection: the frames queued by send(), one POST in flight, up to
// MAX_BATCH frames each, numbered from 1 (the server ends a connection that misses one). A
// failed POST calls fail(): it may have lost frames, and the ChatClient resends and resyncs on
// the next connection, as after a socket drop. `[]` goes up when nothing else has for a while,
// as the server ends a connection that POSTs nothing for idle_timeout.
function postQueue(env, conn, fail) {
  const queue = [];
  let token = null;
  let posts = 0;
  let keepaliveMs = KEEPALIVE_MS;
  let inFlight = false;
  let flushPlanned = false;
  let lastPostAt = 0;
  let keepaliveTimer = null;

  // The connection is open: its session names it.
  function start(session) {
    token = session.token;
    const idle = Number(session.idle_timeout);
    if (idle > 0) keepaliveMs = Math.min(KEEPALIVE_MS, (idle * 1000) / 3);
    lastPostAt = env.now();
    planKeepalive();
  }

  // Queue a frame for the next POST; false if the connection is not (or no longer) open.
  function send(frame) {
    if (!conn.alive || !conn.opened) return false;
    queue.push(frame);
    if (!inFlight && !flushPlanned) {
      // Frames sent in the same turn (a rejoin of every room) go up in one POST.
      flushPlanned = true;
      queueMicrotask(flush);
    }
    return true;
  }

  function flush() {
    flushPlanned = false;
    if (conn.alive && !inFlight && queue.length > 0) post(queue.splice(0, MAX_BATCH));
  }

  function request(batch) {
    return env.fetch(env.sendUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        "X-Chat-Session": token,
        "X-Chat-Batch": String(++posts),
        "X-CSRFToken": env.csrfToken(),
      },
      body: JSON.stringify(batch),
    });
  }

  function post(batch) {
    inFlight = true;
    lastPostAt = env.now();
    env.clearTimeout(keepaliveTimer);
    keepaliveTimer = null;
    request(batch).then(
      (response) => answered(response.ok),
      () => answered(false),
    );
  }

  function answered(ok) {
    inFlight = false;
    if (!conn.alive) return;
    if (!ok) fail();
    else if (queue.length > 0) flush();
    else planKeepalive();
  }

  function planKeepalive() {
    env.clearTimeout(keepaliveTimer);
    const wait = Math.max(0, lastPostAt + keepaliveMs - env.now());
    keepaliveTimer = env.setTimeout(() => {
      keepaliveTimer = null;
      if (conn.alive && !inFlight && queue.length === 0) post([]);
    }, wait);
  }

  // The connection has ended: what is still queued is dropped.
  function stop() {
    env.clearTimeout(keepaliveTimer);
    keepaliveTimer = null;
    queue.length = 0;
  }

  return { start, send, stop };
}

function parse(data) {
  try {
    const value = JSON.parse(data);
    return value !== null && typeof value === "object" ? value : null;
  } catch (e) {
    return null;
  }
}
