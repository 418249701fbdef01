// Unit tests of the connection kept open for a tab (chat/static/chat/transport.js): the choice
// between WebSocket and the HTTP fallback (stream, then long-polling), the upgrade back to
// WebSocket, and what the ChatClient is told meanwhile. The very file the browser runs, with a
// fake browser (fakes.js).
// Run with: node --test tests/js/
"use strict";

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { ChatClient } from "../../chat/static/chat/sync.js";
import {
  HANDSHAKE_TIMEOUT_MS,
  PROBE_EVERY_MS,
  keepOpen,
} from "../../chat/static/chat/transport.js";
import { SESSION_TIMEOUT_MS } from "../../chat/static/chat/fallback.js";
import { POLL_URL, SEND_URL, SOCKET_URL, STREAM_URL, fakeEnv, settle } from "./fakes.js";
import { ROOM, joinedFrame } from "./frames.js";

// A ChatClient stand-in that records what the transport tells it.
function recordingClient() {
  const client = { calls: [], received: [], verdict: null };
  client.connected = () => client.calls.push("connected");
  client.disconnected = () => client.calls.push("disconnected");
  client.receive = (frame) => client.received.push(frame);
  client.ping = () => client.calls.push("ping");
  client.tick = () => client.verdict;
  return client;
}

// keepOpen on a fake browser; h.statuses records the status pill's reports. `client(h)`
// makes the client the transport drives (by default one that records what it is told).
function harness({ client = recordingClient, eventSource = true } = {}) {
  const h = fakeEnv({ eventSource });
  h.client = client(h);
  h.statuses = [];
  h.transport = keepOpen(h.client, {
    env: h.env,
    onStatus: (kind, transport) => h.statuses.push([kind, transport]),
  });
  h.socket = () => h.sockets.at(-1);
  h.stream = () => h.streams.at(-1);
  // The GETs that open poll connections (rather than poll one), and the latest GET.
  h.openings = () => h.polls.filter((poll) => poll.opening);
  h.poll = () => h.polls.at(-1);
  const attempts = () => h.sockets.length + h.streams.length + h.openings().length;
  // Run the clock until the transport makes its next attempt (the backoff is random).
  h.nextAttempt = () => {
    const before = attempts();
    for (let waited = 0; waited < 20000; waited += 50) {
      h.clock.advance(50);
      if (attempts() > before) return;
    }
    assert.fail("no new attempt within 20 s");
  };
  return h;
}

// Two WebSocket handshakes fail, the fallback stream opens: the page is on HTTP.
function onTheFallback(options) {
  return fallBack(harness(options));
}

// Two WebSocket handshakes fail, the stream fails before its session, the poll
// connection opens: the page is polling, with its first poll in flight.
async function onPolls(options) {
  const h = harness(options);
  toStream(h);
  h.stream().error();
  h.nextAttempt();
  assert.equal(h.openings().length, 1, "a stream that never opened is followed by polls");
  h.poll().open("poll-token");
  await settle();
  return h;
}

// Two WebSocket handshakes fail: the page's next attempt is a stream, not answered yet.
function toStream(h) {
  h.socket().refuse();
  h.nextAttempt();
  h.socket().refuse();
  h.nextAttempt();
  assert.equal(h.streams.length, 1, "two failed handshakes fall back to HTTP");
}

function fallBack(h) {
  toStream(h);
  h.stream().open();
  return h;
}

describe("WebSocket first", () => {
  test("a page starts with one WebSocket, and frames and sends go over it once it opens", () => {
    const h = harness();
    assert.equal(h.sockets.length, 1);
    assert.equal(h.socket().url, SOCKET_URL);
    assert.equal(h.transport.send({ type: "ping" }), false, "not open yet");
    assert.deepEqual(h.statuses, [["connecting", null]]);

    h.socket().accept();
    h.socket().deliver({ type: "pong", ref: "c1" });

    assert.deepEqual(h.client.calls, ["connected"]);
    assert.deepEqual(h.client.received, [{ type: "pong", ref: "c1" }]);
    assert.deepEqual(h.statuses.at(-1), ["connected", "websocket"]);
    assert.equal(h.transport.send({ type: "ping", ref: "c2" }), true);
    assert.deepEqual(h.socket().sent, [{ type: "ping", ref: "c2" }]);
    assert.equal(h.streams.length, 0);
  });

  test("a socket that opened and then closed is replaced by a socket", () => {
    const h = harness();
    for (let n = 0; n < 3; n += 1) {
      h.socket().accept();
      h.socket().drop();
      h.nextAttempt();
    }

    assert.equal(h.streams.length, 0);
    assert.equal(h.sockets.length, 4);
    assert.deepEqual(h.client.calls, [
      "connected",
      "disconnected",
      "connected",
      "disconnected",
      "connected",
      "disconnected",
    ]);
    assert.deepEqual(h.statuses.at(-1), ["reconnecting", null]);
  });

  test("one failed handshake is not enough to fall back", () => {
    const h = harness();
    h.socket().refuse();
    h.nextAttempt();

    assert.equal(h.sockets.length, 2);
    assert.equal(h.streams.length, 0);
    assert.deepEqual(h.client.calls, [], "a socket that never opened is no disconnect");
  });

  test("failed handshakes count in a row: one that opens in between starts the count again", () => {
    const h = harness();
    h.socket().refuse();
    h.nextAttempt();
    h.socket().accept();
    h.socket().drop();
    h.nextAttempt();
    h.socket().refuse();
    h.nextAttempt();

    assert.equal(h.streams.length, 0);
    assert.equal(h.sockets.length, 4);
  });

  test("without EventSource the page keeps trying WebSockets", () => {
    const h = harness({ eventSource: false });
    for (let n = 0; n < 4; n += 1) {
      h.socket().refuse();
      h.nextAttempt();
    }

    assert.equal(h.sockets.length, 5);
  });
});

describe("falling back to HTTP", () => {
  test("after two failed handshakes in a row the next attempt is an event stream", () => {
    const h = harness();
    h.socket().refuse();
    h.nextAttempt();
    h.socket().refuse();
    h.nextAttempt();

    assert.equal(h.sockets.length, 2);
    assert.equal(h.streams.length, 1);
    assert.equal(h.stream().url, STREAM_URL);
    assert.deepEqual(h.client.calls, []);
  });

  test("a socket not open within 3 s has failed its handshake, and is closed", () => {
    const h = harness();
    h.clock.advance(HANDSHAKE_TIMEOUT_MS - 1);
    assert.equal(h.sockets[0].closedByClient, false);
    h.clock.advance(1);
    assert.equal(h.sockets[0].closedByClient, true);
    h.nextAttempt();
    h.clock.advance(HANDSHAKE_TIMEOUT_MS);
    h.nextAttempt();

    assert.equal(h.streams.length, 1);
    h.sockets[0].accept(); // too late: the page gave up on it
    assert.deepEqual(h.client.calls, []);
  });

  test("the stream's session connects the client once; its frames arrive; status says HTTP", async () => {
    const h = onTheFallback();
    h.stream().deliver({ type: "pong", ref: "c1" });

    assert.deepEqual(h.client.calls, ["connected"]);
    assert.deepEqual(h.client.received, [{ type: "pong", ref: "c1" }]);
    assert.deepEqual(h.statuses.at(-1), ["connected", "http"]);

    assert.equal(h.transport.send({ type: "ping", ref: "c2" }), true);
    await settle();
    assert.deepEqual(h.posts.at(-1).frames, [{ type: "ping", ref: "c2" }]);
  });

  test("a stream that breaks after opening is replaced by a new stream, with backoff", () => {
    const h = onTheFallback();
    h.clock.advance(0); // the background socket is tried at once…
    h.socket().refuse(); // …and is blocked
    h.stream().error();

    assert.equal(h.streams[0].closed, true);
    assert.deepEqual(h.client.calls, ["connected", "disconnected"]);
    assert.deepEqual(h.statuses.at(-1), ["reconnecting", null]);
    const sockets = h.sockets.length;
    h.nextAttempt();
    assert.equal(h.streams.length, 2, "still on the fallback");
    assert.equal(h.sockets.length, sockets);

    h.stream().open();
    assert.deepEqual(h.client.calls, ["connected", "disconnected", "connected"]);
  });

  test("the server's close event is a disconnect like a socket's close", () => {
    const h = onTheFallback();
    h.stream().end(4008);

    assert.equal(h.streams[0].closed, true);
    assert.deepEqual(h.client.calls, ["connected", "disconnected"]);
  });

  test("a stream that fails before its session is followed by long-polling", () => {
    const h = harness();
    toStream(h);
    h.stream().error();
    h.nextAttempt();

    assert.equal(h.openings().length, 1);
    assert.equal(h.poll().url, POLL_URL);
    assert.equal(h.sockets.length, 2);
    assert.equal(h.streams.length, 1);
    assert.deepEqual(h.client.calls, [], "a stream that never opened is no disconnect");
  });

  test("a stream with no session within 10 s (a proxy buffering it) is followed by polls", () => {
    const h = harness();
    toStream(h);
    h.clock.advance(SESSION_TIMEOUT_MS - 1);
    assert.equal(h.stream().closed, false);
    h.clock.advance(1);
    assert.equal(h.stream().closed, true);
    h.nextAttempt();

    assert.equal(h.openings().length, 1);
    assert.equal(h.streams.length, 1);
  });

  test("a poll connection that fails to open too sends the next attempt back to WebSocket", async () => {
    const h = harness();
    toStream(h);
    h.stream().error();
    h.nextAttempt();
    h.poll().fail(); // the server is down, not just its sockets
    await settle();
    h.nextAttempt();

    assert.equal(h.sockets.length, 3);
    assert.equal(h.streams.length, 1);
    assert.equal(h.openings().length, 1);
    h.socket().accept();
    assert.deepEqual(h.client.calls, ["connected"]);
  });

  test("a dead stream (no pong) is closed and replaced", () => {
    const h = onTheFallback();
    h.client.verdict = "reconnect";
    h.clock.advance(1000);
    h.client.verdict = null;

    assert.equal(h.streams[0].closed, true);
    assert.deepEqual(h.client.calls, ["connected", "disconnected"]);
  });

  test("back online, an open stream is asked for proof of life", () => {
    const h = onTheFallback();
    h.stream().deliver({ type: "pong" });
    h.offline = true;
    h.fire("offline");
    assert.deepEqual(h.statuses.at(-1), ["offline", null]);
    h.fire("online");

    assert.deepEqual(h.client.calls, ["connected", "ping"]);
    h.stream().deliver({ type: "pong" });
    assert.deepEqual(h.statuses.at(-1), ["connected", "http"]);
  });
});

describe("long-polling", () => {
  test("the poll connection connects the client once; its frames arrive; status says HTTP", async () => {
    const h = await onPolls();
    h.poll().deliver(1, [{ type: "pong", ref: "c1" }]);
    await settle();

    assert.deepEqual(h.client.calls, ["connected"]);
    assert.deepEqual(h.client.received, [{ type: "pong", ref: "c1" }]);
    assert.deepEqual(h.statuses.at(-1), ["connected", "http"]);
    assert.equal(h.transport.send({ type: "ping", ref: "c2" }), true);
    await settle();
    assert.deepEqual(h.posts.at(-1).frames, [{ type: "ping", ref: "c2" }]);
    assert.equal(h.posts.at(-1).init.headers["X-Chat-Session"], "poll-token");
  });

  test("a poll connection that drops after opening is replaced by a poll connection", async () => {
    const h = await onPolls();
    h.clock.advance(0); // the background socket is tried at once…
    h.socket().refuse(); // …and is blocked
    const sockets = h.sockets.length;
    h.poll().refuse(410);
    await settle();

    assert.deepEqual(h.client.calls, ["connected", "disconnected"]);
    assert.deepEqual(h.statuses.at(-1), ["reconnecting", null]);
    h.nextAttempt();
    assert.equal(h.openings().length, 2, "still polling");
    assert.equal(h.poll().opening, true);
    assert.equal(h.streams.length, 1, "no stream again: the proxy still buffers");
    assert.equal(h.sockets.length, sockets);

    h.poll().open();
    await settle();
    assert.deepEqual(h.client.calls, ["connected", "disconnected", "connected"]);
  });

  test("a stream that opened, dropped and then gets no session is followed by polls", () => {
    const h = onTheFallback();
    h.clock.advance(0);
    h.socket().refuse();
    h.stream().error();
    h.nextAttempt();
    assert.equal(h.streams.length, 2);
    h.stream().error();
    h.nextAttempt();

    assert.equal(h.openings().length, 1);
  });

  test("polls that no longer open go back to WebSocket, and background sockets stop", async () => {
    const h = await onPolls();
    h.clock.advance(0);
    const probe = h.socket(); // a background socket, its handshake under way
    h.poll().refuse(410);
    await settle();
    h.nextAttempt();
    assert.equal(probe.readyState, 0);
    h.poll().fail(); // the new poll connection does not open: the server is down
    await settle();

    assert.equal(probe.closedByClient, true, "the background socket is given up");
    h.nextAttempt();
    const sockets = h.sockets.length;
    h.socket().accept();
    assert.equal(h.socket().url, SOCKET_URL);
    h.clock.advance(PROBE_EVERY_MS * 3);
    assert.equal(h.sockets.length, sockets, "no background sockets on a socket");
    assert.deepEqual(h.client.calls, ["connected", "disconnected", "connected"]);
  });

  test("a socket opening in the background ends the poll connection with X-Chat-Close", async () => {
    const h = await onPolls();
    h.clock.advance(0);
    const probe = h.socket();
    const polls = h.polls.length;
    probe.accept();
    await settle();

    assert.equal(h.polls.at(-1).aborted, true, "the poll in flight is aborted");
    assert.equal(h.polls.length, polls, "and no other follows");
    const goodbye = h.posts.at(-1);
    assert.equal(goodbye.url, SEND_URL);
    assert.equal(goodbye.init.headers["X-Chat-Close"], "1");
    assert.equal(goodbye.init.headers["X-Chat-Session"], "poll-token");
    assert.deepEqual(h.client.calls, ["connected", "disconnected", "connected"]);
    assert.equal(h.transport.send({ type: "ping", ref: "c9" }), true);
    assert.deepEqual(probe.sent, [{ type: "ping", ref: "c9" }]);
    probe.deliver({ type: "pong" });
    assert.deepEqual(h.statuses.at(-1), ["connected", "websocket"]);
  });

  test("a page going away ends its poll connection with X-Chat-Close, in a keepalive POST", async () => {
    const h = await onPolls();
    h.clock.advance(0); // the background socket, its handshake under way
    h.fire("pagehide");
    await settle();

    assert.equal(h.poll().aborted, true, "the poll in flight is aborted");
    const goodbye = h.posts.at(-1);
    assert.equal(goodbye.init.headers["X-Chat-Close"], "1");
    assert.equal(goodbye.init.headers["X-Chat-Session"], "poll-token");
    assert.equal(goodbye.init.keepalive, true, "a POST that outlives the page");
    // Back from the back/forward cache, the page polls again.
    h.nextAttempt();
    assert.equal(h.openings().length, 2);
  });

  test("stop() ends the poll connection with X-Chat-Close, and nothing reconnects", async () => {
    const h = await onPolls();
    h.transport.stop();
    await settle();

    assert.equal(h.poll().aborted, true);
    assert.equal(h.posts.at(-1).init.headers["X-Chat-Close"], "1");
    const polls = h.polls.length;
    h.clock.advance(PROBE_EVERY_MS * 3);
    await settle();
    assert.equal(h.polls.length, polls);
    assert.deepEqual(h.client.calls, ["connected"]);
  });
});

describe("upgrading back to WebSocket", () => {
  test("a WebSocket is tried as the stream opens; if it opens, the client moves onto it", async () => {
    const h = onTheFallback();
    const before = h.sockets.length;
    h.clock.advance(0);
    assert.equal(h.sockets.length, before + 1, "a background socket");
    h.stream().deliver({ type: "pong" });
    assert.deepEqual(h.statuses.at(-1), ["connected", "http"]);

    h.socket().accept();

    assert.equal(h.streams[0].closed, true, "the stream is closed, so the server drops it");
    assert.deepEqual(h.client.calls, ["connected", "disconnected", "connected"]);
    assert.equal(h.transport.send({ type: "ping", ref: "c9" }), true);
    assert.deepEqual(h.socket().sent, [{ type: "ping", ref: "c9" }]);
    await settle();
    assert.equal(h.posts.length, 0, "nothing goes over HTTP any more");
    h.stream().deliver({ type: "pong", ref: "late" });
    assert.deepEqual(h.client.received, [{ type: "pong" }], "a closed stream is not heard");
    h.socket().deliver({ type: "pong" });
    assert.deepEqual(h.statuses.at(-1), ["connected", "websocket"]);
  });

  test("a blocked background socket leaves the stream alone; another is tried 30 s (± 25 %) later", () => {
    const h = onTheFallback();
    h.clock.advance(0);
    const sockets = h.sockets.length;
    h.random = 0; // the earliest jitter
    h.socket().refuse();

    assert.equal(h.streams[0].closed, false);
    assert.deepEqual(h.client.calls, ["connected"]);
    h.clock.advance(PROBE_EVERY_MS * 0.75 - 1);
    assert.equal(h.sockets.length, sockets);
    h.clock.advance(1);
    assert.equal(h.sockets.length, sockets + 1);
    h.random = 1; // the latest jitter
    h.clock.advance(HANDSHAKE_TIMEOUT_MS); // this one hangs: it fails too
    assert.equal(h.sockets.at(-1).closedByClient, true);
    h.clock.advance(PROBE_EVERY_MS * 1.25 - 1);
    assert.equal(h.sockets.length, sockets + 1);
    h.clock.advance(1);
    assert.equal(h.sockets.length, sockets + 2);
    assert.equal(h.streams.length, 1);
    assert.deepEqual(h.client.calls, ["connected"]);
  });

  test("a background socket that opens while the stream is down is used at once", () => {
    const h = onTheFallback();
    h.clock.advance(0);
    const probe = h.socket();
    h.stream().error();
    probe.accept();

    assert.deepEqual(h.client.calls, ["connected", "disconnected", "connected"]);
    h.clock.advance(20000);
    assert.equal(h.streams.length, 1, "no new stream: the socket is the connection");
    probe.drop();
    h.nextAttempt();
    assert.equal(h.socket().url, SOCKET_URL, "a socket that opened is reconnected as a socket");
  });

  test("after an upgrade the count of failed handshakes starts again", () => {
    const h = onTheFallback();
    h.clock.advance(0);
    h.socket().accept();
    h.socket().drop();
    h.nextAttempt();
    h.socket().refuse();
    h.nextAttempt();

    assert.equal(h.streams.length, 1, "one failure after an upgrade is not two");
  });

  test("connected() and disconnected() alternate through every change of transport", () => {
    const h = harness();
    h.socket().accept();
    h.socket().drop();
    h.nextAttempt();
    h.socket().refuse();
    h.nextAttempt();
    h.socket().refuse();
    h.nextAttempt();
    h.stream().open();
    h.clock.advance(0);
    h.socket().accept();
    h.socket().drop();
    h.nextAttempt();
    h.socket().accept();

    assert.deepEqual(h.client.calls, [
      "connected", // socket
      "disconnected",
      "connected", // stream
      "disconnected",
      "connected", // background socket
      "disconnected",
      "connected", // socket
    ]);
  });

  test("stop() closes the stream and the background socket, and nothing reconnects", () => {
    const h = onTheFallback();
    h.clock.advance(0);
    const probe = h.socket();
    h.transport.stop();

    assert.equal(h.streams[0].closed, true);
    assert.equal(probe.closedByClient, true);
    h.clock.advance(PROBE_EVERY_MS * 3);
    assert.equal(h.sockets.at(-1), probe);
    assert.equal(h.streams.length, 1);
    assert.deepEqual(h.client.calls, ["connected"]);
  });
});

describe("with the real ChatClient", () => {
  const msg = (seq, extra = {}) => ({
    id: 100 + seq,
    seq,
    rev: seq,
    room: ROOM,
    author: "bob",
    author_display: "bob",
    author_avatar: "",
    body: `message ${seq}`,
    created: "2026-11-25T21:40:00+00:00",
    edited: null,
    deleted: false,
    client_id: null,
    files: [],
    ...extra,
  });

  test("moving from the stream to a socket loses nothing and shows nothing twice", async () => {
    const shown = [];
    const chatClient = (h) =>
      new ChatClient({
        send: (frame) => h.transport.send(frame),
        view: { message: (room, message) => shown.push(message.id) },
        now: h.clock.now,
      });
    const h = harness({ client: chatClient });
    const client = h.client;
    client.watch(ROOM, 5);
    fallBack(h);
    await settle();
    const [join] = h.posts[0].frames;
    assert.deepEqual(join, { type: "join", room: ROOM, ref: join.ref, since: 5 });
    h.posts[0].answer(202);
    h.stream().deliver(joinedFrame(join.ref, [msg(6)], 6));

    client.submit(ROOM, "hello", "cid-1"); // POSTed, never acked: the stream is about to go
    await settle();
    assert.equal(h.posts.at(-1).frames[0].client_id, "cid-1");
    h.stream().deliver({ type: "message", room: ROOM, message: msg(7) });
    assert.deepEqual(shown, [106, 107]);

    // The background socket opens: the client rejoins over it since what it showed, and
    // resends the unacked message with the same client_id once joined.
    h.clock.advance(0);
    const probe = h.socket();
    probe.accept();
    assert.equal(h.stream().closed, true);
    const [rejoin] = probe.sent;
    assert.deepEqual(rejoin, { type: "join", room: ROOM, ref: rejoin.ref, since: 7 });
    const own = msg(8, { author: "alice", body: "hello", client_id: "cid-1" });
    probe.deliver(joinedFrame(rejoin.ref, [msg(7), own], 8));
    const resend = probe.sent[1];
    assert.equal(resend.type, "send");
    assert.equal(resend.client_id, "cid-1");
    probe.deliver({ type: "ack", room: ROOM, client_id: "cid-1", ref: resend.ref, id: 108, seq: 8 });
    probe.deliver({ type: "message", room: ROOM, message: own });
    h.stream().deliver({ type: "message", room: ROOM, message: own }); // a closed stream

    assert.deepEqual(shown, [106, 107, 108]);
    assert.equal(client.outbox.size, 0);
    assert.equal(h.posts.length, 2, "nothing more went over HTTP");
  });
});
