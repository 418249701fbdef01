// The HTTP fallback, for networks whose proxies block WebSockets. The client's frames go up in
// POSTs (/fallback/chat/send/), in order, one POST in flight at a time; the server's come down
// one of two ways:
// - openStream: a Server-Sent Events stream (GET /fallback/chat/);
// - openPoll: long-polls (GET /fallback/chat/poll/), one in flight at a time, each answered
//   with the frames after the last one the client acked, for proxies that hold a streamed
//   response until it ends.
// One connection is like one socket: when it ends, keepOpen (transport.js) opens a new one with
// its backoff and the ChatClient resyncs. No DOM: the browser's EventSource, fetch,
// AbortController and timers are passed in, so Node runs this file in the tests. See
// docs/protocol.md.

export const MAX_BATCH = 50; // frames per POST, the server's limit
export const KEEPALIVE_MS = 20000; // POST `[]` after this long without a POST (stream only)
export const SESSION_TIMEOUT_MS = 10000; // no session within this: give up on the connection
export const POLL_TIMEOUT_S = 25; // the server holds a poll this long, unless its session says
export const POLL_GRACE_MS = 10000; // a poll unanswered poll_timeout + this is lost

// env: {EventSource, fetch, AbortController, setTimeout, clearTimeout, now, streamUrl, pollUrl,
// sendUrl, csrfToken()}.
// on: {open(), frame(frame), close()}: called only while the connection is alive, so never
// after conn.close(); close() at most once. Both return the connection:
// {kind: "http", opened, send(frame) → bool, close()}.
export function openStream(env, on) {
  const conn = { kind: "http", opened: false, alive: true, send: (f) => posts.send(f), close };
  const posts = postQueue(env, conn, fail, { keepalive: true });
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
    posts.stop({ goodbye: false }); // closing the stream is the disconnect
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

export function openPoll(env, on) {
  const conn = { kind: "http", opened: false, alive: true, send: (f) => posts.send(f), close };
  const posts = postQueue(env, conn, fail, { keepalive: false }); // polls are signs of life
  const sessionTimer = env.setTimeout(fail, SESSION_TIMEOUT_MS);
  let received = 0; // the number of the last frame handed over: the next poll's ack
  let polling = null; // the AbortController of the GET in flight
  let pollTimer = null;

  // A throw from the owner must not leave a connection that looks alive but no longer polls.
  run().catch((error) => {
    fail();
    throw error;
  });

  async function run() {
    const opening = await get({});
    if (!conn.alive) return;
    const session = opening && opening.session;
    if (!session || typeof session.token !== "string") {
      fail();
      return;
    }
    env.clearTimeout(sessionTimer);
    conn.opened = true;
    posts.start(session);
    const holdS = Number(session.poll_timeout) > 0 ? Number(session.poll_timeout) : POLL_TIMEOUT_S;
    on.open();
    let answer = opening;
    while (take(answer)) {
      pollTimer = env.setTimeout(fail, holdS * 1000 + POLL_GRACE_MS);
      answer = await get({ "X-Chat-Session": session.token, "X-Chat-Ack": String(received) });
      env.clearTimeout(pollTimer);
      if (!conn.alive) return;
      if (answer === null) {
        fail();
        return;
      }
    }
  }

  // One GET of the poll URL; its answer, or null for an error status, a network error, an
  // abort or an answer that is not one.
  async function get(headers) {
    polling = new env.AbortController();
    try {
      const response = await env.fetch(env.pollUrl, {
        method: "GET",
        credentials: "same-origin",
        cache: "no-store",
        headers,
        signal: polling.signal,
      });
      if (!response.ok) return null;
      const answer = await response.json();
      const valid =
        answer !== null &&
        Number.isInteger(answer.first) &&
        answer.first >= 1 &&
        Array.isArray(answer.frames);
      return valid ? answer : null;
    } catch (e) {
      return null;
    } finally {
      polling = null;
    }
  }

  // Hand over the answer's frames not handed over before, in order (an answer may repeat
  // frames: a lost one's, or the opening's); false once the connection has ended.
  function take(answer) {
    if (answer.first > received + 1) {
      fail(); // frames were skipped: lost, as a socket never loses them
      return false;
    }
    for (let index = received + 1 - answer.first; index < answer.frames.length; index += 1) {
      if (!conn.alive) return false; // its owner closed it from on.open or on.frame
      received = answer.first + index;
      const frame = answer.frames[index];
      if (frame !== null && typeof frame === "object") on.frame(frame);
    }
    if (!conn.alive) return false;
    // The server ended the connection, after these frames (the stream's close codes).
    if (answer.close !== null && answer.close !== undefined) {
      fail();
      return false;
    }
    return true;
  }

  function end(goodbye) {
    conn.alive = false;
    env.clearTimeout(sessionTimer);
    env.clearTimeout(pollTimer);
    if (polling) polling.abort();
    posts.stop({ goodbye });
  }

  function fail() {
    if (!conn.alive) return;
    end(false);
    on.close();
  }

  // Close for good, telling the server at once: a connection that stops polling otherwise
  // lingers until idle_timeout. The owner knows, so `on.close` is not called.
  function close() {
    if (conn.alive) end(true);
  }

  return conn;
}

// The POSTs of one connection: the frames queued by send(), one POST in flight, up to
// MAX_BATCH frames each, numbered from 1 (the server ends a connection that misses one). A
// failed POST calls fail(): it may have lost frames, and the ChatClient resends and resyncs on
// the next connection, as after a socket drop. With `keepalive`, `[]` goes up when nothing
// else has for a while, as the server ends a connection that POSTs nothing for idle_timeout.
function postQueue(env, conn, fail, { keepalive }) {
  const queue = [];
  let token = null;
  let posts = 0;
  let keepaliveMs = KEEPALIVE_MS;
  let inFlight = false;
  let flushPlanned = false;
  let goodbyePlanned = false;
  let lastPostAt = 0;
  let keepaliveTimer = null;

  // The connection is open: its session names it.
  function start(session) {
    token = session.token;
    if (!keepalive) return;
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

  function request(batch, headers = {}, { keepalive = false } = {}) {
    return env.fetch(env.sendUrl, {
      method: "POST",
      credentials: "same-origin",
      keepalive,
      headers: {
        "Content-Type": "application/json",
        "X-Chat-Session": token,
        "X-Chat-Batch": String(++posts),
        "X-CSRFToken": env.csrfToken(),
        ...headers,
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
    if (!conn.alive) {
      if (goodbyePlanned) goodbye();
      return;
    }
    if (!ok) fail();
    else if (queue.length > 0) flush();
    else planKeepalive();
  }

  function planKeepalive() {
    if (!keepalive) return;
    env.clearTimeout(keepaliveTimer);
    const wait = Math.max(0, lastPostAt + keepaliveMs - env.now());
    keepaliveTimer = env.setTimeout(() => {
      keepaliveTimer = null;
      if (conn.alive && !inFlight && queue.length === 0) post([]);
    }, wait);
  }

  // The connection has ended. With `goodbye` (its owner closed it), what is still queued goes
  // up with X-Chat-Close, after the POST in flight if there is one, and no answer is awaited.
  function stop({ goodbye: sayGoodbye }) {
    env.clearTimeout(keepaliveTimer);
    keepaliveTimer = null;
    if (!sayGoodbye || token === null) queue.length = 0;
    else if (inFlight) goodbyePlanned = true;
    else goodbye();
  }

  function goodbye() {
    goodbyePlanned = false;
    const batch = queue.splice(0, MAX_BATCH);
    queue.length = 0; // beyond one POST: the ChatClient resends what matters on its next connection
    // keepalive: it may be the page's last words (a page going away). A body past the
    // browser's 64 KiB for such requests fails, and the connection lingers as before.
    request(batch, { "X-Chat-Close": "1" }, { keepalive: true }).catch(() => {});
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
