// Unit tests of the browser client's delivery logic (chat/static/chat/sync.js), the very file
// the browser runs, driven with a fake clock, a fake socket and a fake view.
// Run with: node --test tests/js/
"use strict";

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { ChatClient, DEFAULTS } from "../../chat/static/chat/sync.js";

const ROOM = "general";
const OTHER = "random";
const STORAGE_KEY = "chatsite.outbox";

// --- Fakes ----------------------------------------------------------------------------------

function fakeStorage(initial = {}) {
  const map = new Map(Object.entries(initial));
  return {
    map,
    getItem: (key) => (map.has(key) ? map.get(key) : null),
    setItem: (key, value) => map.set(key, String(value)),
  };
}

function savedOutbox(storage) {
  return JSON.parse(storage.getItem(STORAGE_KEY) || "[]");
}

// A client wired to a fake clock, a socket that records every frame and a view that records
// every call.
function harness({ storage = null, options = {}, me = "alice" } = {}) {
  const h = { clock: 1000000, sent: [], calls: [], storage };
  const record = (name) => (...args) => h.calls.push({ name, args });
  h.view = {
    message: record("message"),
    edited: record("edited"),
    deleted: record("deleted"),
    reacted: record("reacted"),
    threaded: record("threaded"),
    pending: record("pending"),
    acked: record("acked"),
    failed: record("failed"),
    joined: record("joined"),
    live: record("live"),
    frame: record("frame"),
  };
  h.client = new ChatClient({
    send(frame) {
      h.sent.push(frame);
      return true;
    },
    view: h.view,
    storage,
    now: () => h.clock,
    options,
    me,
  });
  h.advance = (ms) => {
    h.clock += ms;
  };
  h.sentOf = (type) => h.sent.filter((frame) => frame.type === type);
  h.callsOf = (name) => h.calls.filter((call) => call.name === name).map((call) => call.args);
  h.shownSeqs = (room = ROOM) =>
    h.callsOf("message")
      .filter(([r]) => r === room)
      .map(([, msg]) => msg.seq);
  h.forget = () => {
    h.sent.length = 0;
    h.calls.length = 0;
  };
  return h;
}

function msg(seq, { room = ROOM, id = 1000 + seq, clientId = null } = {}) {
  return {
    id,
    seq,
    room,
    author: "alice",
    body: `message ${seq}`,
    created: "2026-11-25T21:40:00.123456+00:00",
    client_id: clientId,
  };
}

// The MSG of message `seq` as a replay sends it after an edit (at `rev`) or a deletion.
function changed(seq, rev, { deleted = false, body = `message ${seq}, edited` } = {}) {
  return Object.assign(msg(seq), { rev, edited: deleted ? null : "2026-11-25T21:45:00+00:00", deleted, body: deleted ? "" : body });
}

function editedFrame(seq, rev, body) {
  return { type: "message_edited", room: ROOM, seq: rev, message: changed(seq, rev, { body }) };
}

function deletedFrame(seq, rev) {
  return { type: "message_deleted", room: ROOM, id: 1000 + seq, seq: rev };
}

function reactionsFrame(seq, rev, reactions) {
  return { type: "message_reactions", room: ROOM, id: 1000 + seq, seq: rev, reactions };
}

function messageFrame(seq, opts = {}) {
  const message = msg(seq, opts);
  return { type: "message", room: message.room, message };
}

function joinedFrame(messages, { room = ROOM, lastSeq, hasMore = false } = {}) {
  const last = messages.length ? messages[messages.length - 1].seq : 0;
  return {
    type: "joined",
    room,
    name: "General",
    topic: "",
    messages,
    last_seq: lastSeq === undefined ? last : lastSeq,
    online: ["alice"],
    has_more: hasMore,
  };
}

function seqs(from, to, opts = {}) {
  const out = [];
  for (let seq = from; seq <= to; seq += 1) out.push(msg(seq, opts));
  return out;
}

// Watch ROOM with `cursor`, connect, and answer the join with nothing new; then forget the
// frames and calls so far.
function joinedAt(h, cursor, room = ROOM) {
  joinedAll(h, { [room]: cursor });
}

// The same for several rooms at once: {room: cursor}.
function joinedAll(h, cursors) {
  for (const [room, cursor] of Object.entries(cursors)) h.client.watch(room, cursor);
  h.client.connected();
  for (const [room, cursor] of Object.entries(cursors)) {
    h.client.receive(joinedFrame([], { room, lastSeq: cursor }));
  }
  h.forget();
}

// The ref of the last `send` frame for `clientId`.
function lastSendRef(h, clientId) {
  const sends = h.sentOf("send").filter((frame) => frame.client_id === clientId);
  return sends[sends.length - 1].ref;
}

// --- Messages shown once --------------------------------------------------------------------

describe("messages shown once", () => {
  test("a message frame with an id already shown is not shown again", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(6));
    h.client.receive(messageFrame(6));
    assert.deepEqual(h.shownSeqs(), [6]);
  });

  test("a joined replay overlapping shown messages shows only the new ones", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(6));
    h.client.receive(messageFrame(7));
    h.client.disconnected();
    h.client.connected();
    h.client.receive(joinedFrame(seqs(6, 9)));
    assert.deepEqual(h.shownSeqs(), [6, 7, 8, 9]);
    assert.equal(h.callsOf("message").length, 4);
  });

  test("messages marked shown by the page are not shown again by the first join", () => {
    const h = harness();
    h.client.watch(ROOM, null);
    h.client.markShown(ROOM, msg(9));
    h.client.markShown(ROOM, msg(10));
    h.client.connected();
    h.client.receive(joinedFrame(seqs(8, 11), { lastSeq: 11, hasMore: true }));
    assert.deepEqual(h.shownSeqs(), [8, 11]);
  });

  test("a message is shown to the view of its own room only", () => {
    const h = harness();
    joinedAll(h, { [ROOM]: 5, [OTHER]: 2 });
    h.client.receive(messageFrame(3, { room: OTHER }));
    assert.deepEqual(h.shownSeqs(ROOM), []);
    assert.deepEqual(h.shownSeqs(OTHER), [3]);
  });
});

// --- Gaps and resyncs -----------------------------------------------------------------------

describe("gap detection", () => {
  test("a message past a gap is shown and one resync join since the cursor is sent", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(7));
    assert.deepEqual(h.shownSeqs(), [7]);
    h.client.receive(messageFrame(8));
    assert.deepEqual(h.shownSeqs(), [7, 8]);
    const joins = h.sentOf("join");
    assert.equal(joins.length, 1);
    assert.equal(joins[0].room, ROOM);
    assert.equal(joins[0].since, 5);
    assert.equal(typeof joins[0].ref, "string");
  });

  test("the resync reply fills the gap, moves the cursor to last_seq and sends no other join", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(7));
    h.client.receive(messageFrame(8));
    h.client.receive(joinedFrame([msg(6)], { lastSeq: 8 }));
    assert.deepEqual(h.shownSeqs(), [7, 8, 6]);
    const state = h.client.rooms.get(ROOM);
    assert.equal(state.cursor, 8);
    assert.equal(state.hasGap(), false);
    assert.equal(h.sentOf("join").length, 1);
    h.client.receive(messageFrame(9));
    assert.equal(h.sentOf("join").length, 1);
    assert.equal(state.cursor, 9);
  });

  test("a hole left by a deleted message is settled by last_seq, not resynced forever", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(7)); // 6 was deleted before this client saw it
    assert.equal(h.sentOf("join").length, 1);
    h.client.receive(joinedFrame([msg(7)], { lastSeq: 7 }));
    const state = h.client.rooms.get(ROOM);
    assert.equal(state.cursor, 7);
    assert.equal(state.hasGap(), false);
    h.client.receive(messageFrame(8));
    assert.equal(state.cursor, 8);
    assert.equal(h.sentOf("join").length, 1);
    assert.deepEqual(h.shownSeqs(), [7, 8]);
  });

  test("a deleted newest message is settled by last_seq beyond the reply's messages", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive({ type: "pong", rooms: { [ROOM]: 8 } });
    assert.equal(h.sentOf("join").length, 1);
    h.client.receive(joinedFrame([msg(6), msg(7)], { lastSeq: 8 })); // 8 was deleted
    assert.equal(h.client.rooms.get(ROOM).cursor, 8);
    h.client.receive({ type: "pong", rooms: { [ROOM]: 8 } });
    assert.equal(h.sentOf("join").length, 1);
  });

  test("a joined reply with has_more asks for the rest since the last seq in that reply", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(20));
    h.client.receive(joinedFrame(seqs(6, 10), { lastSeq: 20, hasMore: true }));
    const state = h.client.rooms.get(ROOM);
    assert.equal(state.cursor, 10);
    let joins = h.sentOf("join");
    assert.equal(joins.length, 2);
    assert.equal(joins[1].since, 10);
    h.client.receive(joinedFrame(seqs(11, 20), { lastSeq: 20 }));
    assert.equal(state.cursor, 20);
    joins = h.sentOf("join");
    assert.equal(joins.length, 2);
    assert.deepEqual(h.shownSeqs(), [20, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]);
  });

  test("a has_more reply whose last message is past a deleted seq continues from that message", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(30));
    h.client.receive(joinedFrame([msg(6), msg(8), msg(9)], { lastSeq: 30, hasMore: true }));
    const joins = h.sentOf("join");
    assert.equal(joins.length, 2);
    assert.equal(joins[1].since, 9);
  });

  test("watch(room, null) sends a join without since", () => {
    const h = harness();
    h.client.watch(ROOM, null);
    assert.equal(h.sent.length, 0);
    h.client.connected();
    const joins = h.sentOf("join");
    assert.equal(joins.length, 1);
    assert.equal(joins[0].room, ROOM);
    assert.equal("since" in joins[0], false);
  });

  test("watch(room, cursor) while connected sends a join since the cursor at once", () => {
    const h = harness();
    h.client.connected();
    h.client.watch(ROOM, 12);
    const joins = h.sentOf("join");
    assert.equal(joins.length, 1);
    assert.equal(joins[0].since, 12);
  });

  test("the latest page settles the cursor to last_seq even when has_more is true", () => {
    const h = harness();
    h.client.watch(ROOM, null);
    h.client.connected();
    h.client.receive(joinedFrame(seqs(51, 100), { lastSeq: 100, hasMore: true }));
    const state = h.client.rooms.get(ROOM);
    assert.equal(state.cursor, 100);
    assert.equal(state.hasGap(), false);
    assert.equal(h.sentOf("join").length, 1);
    assert.equal(h.shownSeqs().length, 50);
    h.client.receive(messageFrame(101));
    assert.equal(state.cursor, 101);
    assert.equal(h.sentOf("join").length, 1);
  });

  test("the latest page of an empty room settles the cursor to 0", () => {
    const h = harness();
    h.client.watch(ROOM, null);
    h.client.connected();
    h.client.receive(joinedFrame([], { lastSeq: 0 }));
    assert.equal(h.client.rooms.get(ROOM).cursor, 0);
    h.client.receive(messageFrame(1));
    assert.equal(h.client.rooms.get(ROOM).cursor, 1);
    assert.equal(h.sentOf("join").length, 1);
  });

  test("a message arriving before the latest page is answered is kept and not shown twice", () => {
    const h = harness();
    h.client.watch(ROOM, null);
    h.client.connected();
    h.client.receive(messageFrame(101));
    h.client.receive(joinedFrame(seqs(52, 101), { lastSeq: 100, hasMore: true }));
    assert.equal(h.client.rooms.get(ROOM).cursor, 101);
    assert.equal(h.shownSeqs().filter((seq) => seq === 101).length, 1);
    assert.equal(h.sentOf("join").length, 1);
  });
});

// --- Pong -----------------------------------------------------------------------------------

describe("pong", () => {
  test("a pong hands the view whether broadcasts are live, when it says", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive({ type: "pong", rooms: { [ROOM]: 5 }, live: false });
    h.client.receive({ type: "pong", rooms: { [ROOM]: 5 }, live: true });
    h.client.receive({ type: "pong", rooms: { [ROOM]: 5 } }); // says nothing of it
    const told = h.calls.filter((call) => call.name === "live").map((call) => call.args);
    assert.deepEqual(told, [[false], [true]]);
  });

  test("a pong with a room's last seq beyond the cursor resyncs that room", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive({ type: "pong", rooms: { [ROOM]: 6 } });
    const joins = h.sentOf("join");
    assert.equal(joins.length, 1);
    assert.equal(joins[0].room, ROOM);
    assert.equal(joins[0].since, 5);
  });

  test("a pong with a room's last seq equal to the cursor sends nothing", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive({ type: "pong", rooms: { [ROOM]: 5 } });
    assert.deepEqual(h.sent, []);
  });

  test("a pong resyncs only the rooms that are behind", () => {
    const h = harness();
    joinedAll(h, { [ROOM]: 5, [OTHER]: 9 });
    h.client.receive({ type: "pong", rooms: { [ROOM]: 5, [OTHER]: 11, unwatched: 3 } });
    const joins = h.sentOf("join");
    assert.equal(joins.length, 1);
    assert.equal(joins[0].room, OTHER);
    assert.equal(joins[0].since, 9);
  });

  test("a second pong while a resync is in flight sends no second join", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive({ type: "pong", rooms: { [ROOM]: 7 } });
    h.client.receive({ type: "pong", rooms: { [ROOM]: 7 } });
    assert.equal(h.sentOf("join").length, 1);
  });

  test("an unasked pong (no ref: the server regained its channel layer) resyncs a room behind", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive({ type: "pong", rooms: { [ROOM]: 9 } });
    const joins = h.sentOf("join");
    assert.equal(joins.length, 1);
    assert.equal(joins[0].room, ROOM);
    assert.equal(joins[0].since, 5);
    assert.equal(h.client.tick(), null, "no ping was outstanding: nothing to be confused by");
  });
});

// --- Echo check -----------------------------------------------------------------------------

describe("echo check", () => {
  const { echoTimeoutMs } = DEFAULTS;

  // Send `body` as `clientId` in ROOM and receive its ack at `seq`; then forget the frames.
  function sentAndAcked(h, clientId, seq) {
    h.client.submit(ROOM, `body of ${clientId}`, clientId);
    h.client.receive({ type: "ack", room: ROOM, client_id: clientId, id: 1000 + seq, seq });
    h.forget();
  }

  test("an acked send whose broadcast never comes resyncs the room after echoTimeoutMs", () => {
    const h = harness();
    joinedAt(h, 5);
    sentAndAcked(h, "cid-1", 6);
    h.advance(echoTimeoutMs);
    h.client.tick();
    assert.deepEqual(h.sentOf("join"), [], "not at exactly echoTimeoutMs");
    h.advance(1);
    h.client.tick();
    const joins = h.sentOf("join");
    assert.equal(joins.length, 1);
    assert.equal(joins[0].room, ROOM);
    assert.equal(joins[0].since, 5);
  });

  test("the resync that brings the message ends the check: no second resync", () => {
    const h = harness();
    joinedAt(h, 5);
    sentAndAcked(h, "cid-1", 6);
    h.advance(echoTimeoutMs + 1);
    h.client.tick();
    h.client.receive(joinedFrame([msg(6, { clientId: "cid-1" })], { lastSeq: 6 }));
    assert.deepEqual(h.shownSeqs(), [6]);
    for (let i = 0; i < 5; i += 1) {
      h.advance(echoTimeoutMs + 1);
      h.client.tick();
    }
    assert.equal(h.sentOf("join").length, 1);
    assert.equal(h.client.rooms.get(ROOM).echoes.size, 0);
  });

  test("no resync when the broadcast comes after the ack", () => {
    const h = harness();
    joinedAt(h, 5);
    sentAndAcked(h, "cid-1", 6);
    h.advance(echoTimeoutMs / 2);
    h.client.receive(messageFrame(6, { clientId: "cid-1" }));
    h.advance(echoTimeoutMs);
    h.client.tick();
    assert.deepEqual(h.sentOf("join"), []);
    assert.equal(h.client.rooms.get(ROOM).echoes.size, 0);
  });

  test("no resync when the broadcast came before the ack", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.receive(messageFrame(6, { clientId: "cid-1" }));
    h.client.receive({ type: "ack", room: ROOM, client_id: "cid-1", id: 1006, seq: 6 });
    h.forget();
    h.advance(echoTimeoutMs + 1);
    h.client.tick();
    assert.deepEqual(h.sentOf("join"), []);
  });

  test("no resync when a replay (here after a gap) covered the message", () => {
    const h = harness();
    joinedAt(h, 5);
    sentAndAcked(h, "cid-1", 7);
    h.client.receive(messageFrame(8)); // 6 and 7 are missing: a gap resync
    assert.equal(h.sentOf("join").length, 1);
    h.client.receive(joinedFrame([msg(6), msg(7, { clientId: "cid-1" }), msg(8)], { lastSeq: 8 }));
    h.advance(echoTimeoutMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("join").length, 1, "only the gap's resync");
  });

  test("many acked sends without broadcasts give one resync of the room", () => {
    const h = harness();
    joinedAll(h, { [ROOM]: 5, [OTHER]: 2 });
    for (let seq = 6; seq <= 25; seq += 1) {
      sentAndAcked(h, `cid-${seq}`, seq);
      h.advance(100);
      h.client.tick();
    }
    h.advance(echoTimeoutMs);
    h.client.tick();
    h.advance(echoTimeoutMs);
    h.client.tick();
    const joins = h.sentOf("join");
    assert.deepEqual(
      joins.map((frame) => [frame.room, frame.since]),
      [[ROOM, 5]],
      "one join for the room, none for the other room"
    );
    h.client.receive(joinedFrame(seqs(6, 25), { lastSeq: 25 }));
    h.advance(echoTimeoutMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("join").length, 1);
  });

  test("a disconnect drops the check: the rejoin resyncs, and no extra join follows", () => {
    const h = harness();
    joinedAt(h, 5);
    sentAndAcked(h, "cid-1", 6);
    h.client.disconnected();
    h.client.connected();
    assert.equal(h.sentOf("join").length, 1);
    h.advance(echoTimeoutMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("join").length, 1, "the rejoin is still in flight");
    assert.equal(h.client.rooms.get(ROOM).echoes.size, 0);
  });
});

// --- Outbox ---------------------------------------------------------------------------------

describe("outbox", () => {
  test("a message submitted while disconnected is shown pending and not sent", () => {
    const h = harness();
    h.client.watch(ROOM, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    assert.deepEqual(h.sent, []);
    const pending = h.callsOf("pending");
    assert.equal(pending.length, 1);
    assert.equal(pending[0][0].clientId, "cid-1");
    assert.equal(pending[0][0].body, "hello");
    assert.equal(item.state, "pending");
  });

  test("a pending message is sent with its client_id once connected and the room is joined", () => {
    const h = harness();
    h.client.watch(ROOM, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.connected();
    assert.deepEqual(h.sentOf("send"), [], "not before the room's joined reply");
    h.client.receive(joinedFrame([], { lastSeq: 5 }));
    const sends = h.sentOf("send");
    assert.equal(sends.length, 1);
    assert.equal(sends[0].room, ROOM);
    assert.equal(sends[0].body, "hello");
    assert.equal(sends[0].client_id, "cid-1");
    assert.equal(typeof sends[0].ref, "string");
  });

  test("a message submitted in a joined room is sent at once", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    assert.equal(h.sentOf("send").length, 1);
    assert.equal(h.sentOf("send")[0].client_id, "cid-1");
  });

  test("a message submitted after connecting but before the joined reply waits for it", () => {
    const h = harness();
    h.client.watch(ROOM, 5);
    h.client.connected();
    h.client.submit(ROOM, "hello", "cid-1");
    h.advance(DEFAULTS.ackTimeoutMs + 1);
    h.client.tick();
    assert.deepEqual(h.sentOf("send"), []);
    h.client.receive(joinedFrame([], { lastSeq: 5 }));
    assert.equal(h.sentOf("send").length, 1);
  });

  test("a pending message waits for the joined reply of its own room", () => {
    const h = harness();
    h.client.watch(ROOM, 5);
    h.client.watch(OTHER, 2);
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.connected();
    h.client.receive(joinedFrame([], { room: OTHER, lastSeq: 2 }));
    assert.deepEqual(h.sentOf("send"), []);
    h.client.receive(joinedFrame([], { lastSeq: 5 }));
    assert.equal(h.sentOf("send").length, 1);
  });

  test("an ack removes the message from the outbox and storage and calls view.acked", () => {
    const storage = fakeStorage();
    const h = harness({ storage });
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    assert.equal(savedOutbox(storage).length, 1);
    const ack = { type: "ack", room: ROOM, client_id: "cid-1", id: 1006, seq: 6, ref: lastSendRef(h, "cid-1") };
    h.client.receive(ack);
    assert.equal(h.client.outbox.has("cid-1"), false);
    assert.deepEqual(h.client.pendingIn(ROOM), []);
    assert.deepEqual(savedOutbox(storage), []);
    const acked = h.callsOf("acked");
    assert.equal(acked.length, 1);
    assert.equal(acked[0][0].clientId, "cid-1");
    assert.equal(acked[0][1], ack);
  });

  test("an acked message is not resent when its ack timeout passes", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.receive({ type: "ack", room: ROOM, client_id: "cid-1", id: 1006, seq: 6 });
    h.advance(DEFAULTS.ackTimeoutMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("send").length, 1);
  });

  test("a message not acked within ackTimeoutMs is resent with the same client_id", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    h.advance(DEFAULTS.ackTimeoutMs);
    h.client.tick();
    assert.equal(h.sentOf("send").length, 1, "not resent at exactly ackTimeoutMs");
    h.advance(1);
    h.client.tick();
    const sends = h.sentOf("send");
    assert.equal(sends.length, 2);
    assert.equal(sends[1].client_id, "cid-1");
    assert.equal(sends[1].body, "hello");
    assert.notEqual(sends[1].ref, sends[0].ref);
  });

  test("a message is failed after maxTries unacked sends and never sent again", () => {
    const maxTries = DEFAULTS.maxTries;
    const h = harness();
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    for (let i = 1; i < maxTries; i += 1) {
      h.advance(DEFAULTS.ackTimeoutMs + 1);
      h.client.receive({ type: "typing", room: ROOM, user: "bob" }); // keep the socket alive
      h.client.tick();
    }
    assert.equal(h.sentOf("send").length, maxTries);
    assert.deepEqual(h.callsOf("failed"), []);
    h.advance(DEFAULTS.ackTimeoutMs + 1);
    h.client.receive({ type: "typing", room: ROOM, user: "bob" });
    h.client.tick();
    const failed = h.callsOf("failed");
    assert.equal(failed.length, 1);
    assert.equal(failed[0][0].clientId, "cid-1");
    assert.equal(item.state, "failed");
    assert.equal(typeof item.error, "string");
    for (let i = 0; i < 3; i += 1) {
      h.advance(DEFAULTS.ackTimeoutMs + 1);
      h.client.receive({ type: "typing", room: ROOM, user: "bob" });
      h.client.tick();
    }
    assert.equal(h.sentOf("send").length, maxTries);
    assert.equal(h.callsOf("failed").length, 1);
    assert.ok(h.sentOf("send").every((frame) => frame.client_id === "cid-1"));
  });

  test("retry sends a failed message again with the same client_id", () => {
    const h = harness({ options: { maxTries: 1 } });
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    h.advance(DEFAULTS.ackTimeoutMs + 1);
    h.client.tick();
    assert.equal(item.state, "failed");
    h.forget();
    h.client.retry("cid-1");
    assert.equal(item.state, "pending");
    assert.equal(item.error, null);
    assert.equal(h.callsOf("pending").length, 1);
    const sends = h.sentOf("send");
    assert.equal(sends.length, 1);
    assert.equal(sends[0].client_id, "cid-1");
    assert.equal(sends[0].body, "hello");
  });

  test("a retried message gets maxTries sends again", () => {
    const h = harness({ options: { maxTries: 2, pingAfterMs: 1e9, keepaliveMs: 1e9 } });
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    for (let i = 0; i < 2; i += 1) {
      h.advance(DEFAULTS.ackTimeoutMs + 1);
      h.client.tick();
    }
    assert.equal(item.state, "failed");
    h.forget();
    h.client.retry("cid-1");
    h.advance(DEFAULTS.ackTimeoutMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("send").length, 2);
    assert.equal(item.state, "pending");
  });

  test("a non-retryable error for the send's ref fails the message at once", () => {
    const h = harness();
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "x".repeat(5000), "cid-1");
    const ref = lastSendRef(h, "cid-1");
    h.client.receive({ type: "error", ref, code: "too_long", message: "Too long." });
    const failed = h.callsOf("failed");
    assert.equal(failed.length, 1);
    assert.equal(failed[0][0].clientId, "cid-1");
    assert.equal(item.state, "failed");
    assert.equal(item.error, "Too long.");
    assert.deepEqual(h.callsOf("frame"), [], "the error is the item's, not the view's");
    h.advance(DEFAULTS.ackTimeoutMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("send").length, 1);
  });

  test("a failed message is not resent when its room is joined again", () => {
    const h = harness();
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "x".repeat(5000), "cid-1");
    h.client.receive({ type: "error", ref: lastSendRef(h, "cid-1"), code: "too_long", message: "Too long." });
    h.client.disconnected();
    h.client.connected();
    h.client.receive(joinedFrame([], { lastSeq: 5 }));
    assert.equal(h.sentOf("send").length, 1);
    assert.equal(h.callsOf("failed").length, 1);
    assert.equal(item.state, "failed");
  });

  for (const code of ["server_error", "unavailable"]) {
    test(`a ${code} for the send's ref does not fail the message; the ack timeout resends it`, () => {
      const h = harness();
      joinedAt(h, 5);
      const item = h.client.submit(ROOM, "hello", "cid-1");
      const ref = lastSendRef(h, "cid-1");
      h.client.receive({ type: "error", ref, code, message: "Try again." });
      assert.deepEqual(h.callsOf("failed"), []);
      assert.equal(item.state, "pending");
      assert.equal(h.sentOf("send").length, 1, "not resent before the timeout");
      h.advance(DEFAULTS.ackTimeoutMs + 1);
      h.client.tick();
      const sends = h.sentOf("send");
      assert.equal(sends.length, 2);
      assert.equal(sends[1].client_id, "cid-1");
    });
  }

  test("a rate_limited send waits retry_after, is sent again with its client_id, and keeps its tries", () => {
    const h = harness();
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    const ref = lastSendRef(h, "cid-1");
    h.client.receive({ type: "error", ref, code: "rate_limited", message: "Slow down.", retry_after: 2.5 });
    assert.deepEqual(h.callsOf("failed"), []);
    assert.equal(item.state, "pending");
    h.advance(2000);
    h.client.tick();
    assert.equal(h.sentOf("send").length, 1, "not before retry_after");
    h.advance(600);
    h.client.tick();
    const sends = h.sentOf("send");
    assert.equal(sends.length, 2);
    assert.equal(sends[1].client_id, "cid-1");
    assert.equal(item.tries, 1, "the refused try does not count against maxTries");
  });

  test("an error whose ref matches no send goes to view.frame and fails nothing", () => {
    const h = harness();
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    const error = { type: "error", ref: "nobody", code: "not_found", message: "No such room." };
    h.client.receive(error);
    assert.deepEqual(h.callsOf("frame"), [[error]]);
    assert.equal(item.state, "pending");
    assert.deepEqual(h.callsOf("failed"), []);
  });

  test("frames with no handler of their own go to view.frame", () => {
    const h = harness();
    joinedAt(h, 5);
    const typing = { type: "typing", room: ROOM, user: "bob" };
    h.client.receive(typing);
    assert.deepEqual(h.callsOf("frame"), [[typing]]);
  });
});

// --- Outbox persistence ---------------------------------------------------------------------

describe("one room's messages go in the order typed", () => {
  // A users run (2026-12-02) sent 20 messages 150 ms apart; the server refused some for
  // going too fast, the page sent them again after retry_after, and the ones behind them,
  // sent meanwhile, were stored first: "11 12 15 19 13 14 16 17 18".
  const ackOf = (clientId, seq) => ({ type: "ack", room: ROOM, client_id: clientId, id: 1000 + seq, seq });
  const sentIds = (h) => h.sentOf("send").map((frame) => frame.client_id);

  test("one at a time: each is sent once the one before it is acked", () => {
    const h = harness();
    joinedAt(h, 5);
    for (const id of ["c1", "c2", "c3"]) h.client.submit(ROOM, id, id);
    assert.deepEqual(sentIds(h), ["c1"]);
    h.client.receive(ackOf("c1", 6));
    assert.deepEqual(sentIds(h), ["c1", "c2"]);
    h.client.receive(ackOf("c2", 7));
    assert.deepEqual(sentIds(h), ["c1", "c2", "c3"]);
  });

  test("one refused for going too fast holds the ones behind it until it is stored", () => {
    const h = harness();
    joinedAt(h, 5);
    for (const id of ["c1", "c2", "c3"]) h.client.submit(ROOM, id, id);
    h.client.receive({ type: "error", ref: lastSendRef(h, "c1"), code: "rate_limited", message: "Slow down.", retry_after: 1 });
    h.advance(500);
    h.client.tick();
    h.client.submit(ROOM, "c4", "c4");
    h.client.discard("c4"); // a later one dropped: it still waits
    assert.deepEqual(sentIds(h), ["c1"], "nothing overtakes it, nor sends it early");
    h.advance(600);
    h.client.tick();
    assert.deepEqual(sentIds(h), ["c1", "c1"]);
    h.client.receive(ackOf("c1", 6));
    h.client.receive(ackOf("c2", 7)); // (acks come one by one: c2 was sent after c1's)
    assert.deepEqual(sentIds(h), ["c1", "c1", "c2", "c3"]);
  });

  test("every way the one before ends lets the next go: acked, seen stored, failed, dropped", () => {
    const ends = {
      acked: (h) => h.client.receive(ackOf("c1", 6)),
      "seen stored": (h) => h.client.receive(messageFrame(6, { clientId: "c1" })),
      failed: (h) => h.client.receive({ type: "error", ref: lastSendRef(h, "c1"), code: "forbidden", message: "No." }),
      dropped: (h) => h.client.discard("c1"),
    };
    for (const [how, end] of Object.entries(ends)) {
      const h = harness();
      joinedAt(h, 5);
      h.client.submit(ROOM, "first", "c1");
      h.client.submit(ROOM, "second", "c2");
      end(h);
      assert.deepEqual(sentIds(h), ["c1", "c2"], how);
    }
  });

  test("another room's messages do not wait", () => {
    const h = harness();
    joinedAll(h, { [ROOM]: 5, [OTHER]: 2 });
    h.client.submit(ROOM, "here", "c1");
    h.client.submit(OTHER, "there", "d1");
    assert.deepEqual(sentIds(h), ["c1", "d1"]);
  });

  test("a message tried again by hand goes after the ones still to send", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.submit(ROOM, "first", "c1");
    h.client.submit(ROOM, "second", "c2");
    h.client.receive({ type: "error", ref: lastSendRef(h, "c1"), code: "forbidden", message: "No." });
    assert.deepEqual(sentIds(h), ["c1", "c2"]);
    h.client.retry("c1");
    assert.deepEqual(sentIds(h), ["c1", "c2"], "behind c2, still in flight");
    h.client.receive(ackOf("c2", 6));
    assert.deepEqual(sentIds(h), ["c1", "c2", "c1"]);
  });
});

describe("outbox persistence", () => {
  test("a new client with the same storage restores pending messages", () => {
    const storage = fakeStorage();
    const first = harness({ storage });
    first.client.watch(ROOM, 5);
    first.client.submit(ROOM, "hello", "cid-1");
    first.client.submit(ROOM, "again", "cid-2");
    const second = harness({ storage });
    const restored = second.client.pendingIn(ROOM);
    assert.deepEqual(
      restored.map((item) => [item.clientId, item.body, item.state]),
      [
        ["cid-1", "hello", "pending"],
        ["cid-2", "again", "pending"],
      ]
    );
  });

  test("restored messages are sent with their client_ids after connect and joined", () => {
    const storage = fakeStorage();
    const first = harness({ storage });
    joinedAt(first, 5);
    first.client.submit(ROOM, "hello", "cid-1"); // sent, never acked: the page was reloaded
    const second = harness({ storage });
    second.client.watch(ROOM, 5);
    second.client.connected();
    assert.deepEqual(second.sentOf("send"), []);
    second.client.receive(joinedFrame([], { lastSeq: 5 }));
    const sends = second.sentOf("send");
    assert.equal(sends.length, 1);
    assert.equal(sends[0].client_id, "cid-1");
    assert.equal(sends[0].body, "hello");
    assert.equal(sends[0].room, ROOM);
  });

  test("a restored message keeps its files", () => {
    const storage = fakeStorage();
    const first = harness({ storage });
    joinedAt(first, 5);
    first.client.submit(ROOM, "", "cid-1", { attachments: [4, 2] });
    const second = harness({ storage });
    second.client.watch(ROOM, 5);
    second.client.connected();
    second.client.receive(joinedFrame([], { lastSeq: 5 }));
    const sends = second.sentOf("send");
    assert.equal(sends.length, 1);
    assert.deepEqual(sends[0].attachments, [4, 2]);
  });

  test("a restored message gets its full maxTries again", () => {
    const storage = fakeStorage();
    const first = harness({ storage, options: { maxTries: 2 } });
    joinedAt(first, 5);
    first.client.submit(ROOM, "hello", "cid-1");
    first.advance(DEFAULTS.ackTimeoutMs + 1);
    first.client.tick();
    assert.equal(first.sentOf("send").length, 2);
    const second = harness({ storage, options: { maxTries: 2 } });
    joinedAt(second, 5);
    assert.equal(second.client.outbox.get("cid-1").tries, 1);
    second.advance(DEFAULTS.ackTimeoutMs + 1);
    second.client.tick();
    assert.equal(second.sentOf("send").length, 1);
    assert.deepEqual(second.callsOf("failed"), []);
  });

  test("a failed message is restored as failed and not sent", () => {
    const storage = fakeStorage();
    const first = harness({ storage });
    joinedAt(first, 5);
    first.client.submit(ROOM, "x".repeat(5000), "cid-1");
    first.client.receive({ type: "error", ref: lastSendRef(first, "cid-1"), code: "too_long", message: "Too long." });
    const second = harness({ storage });
    const item = second.client.outbox.get("cid-1");
    assert.equal(item.state, "failed");
    assert.equal(item.error, "Too long.");
    second.client.watch(ROOM, 5);
    second.client.connected();
    second.client.receive(joinedFrame([], { lastSeq: 5 }));
    second.advance(DEFAULTS.ackTimeoutMs + 1);
    second.client.tick();
    assert.deepEqual(second.sentOf("send"), []);
  });

  test("discard removes a message from the outbox and storage", () => {
    const storage = fakeStorage();
    const first = harness({ storage });
    first.client.watch(ROOM, 5);
    first.client.submit(ROOM, "hello", "cid-1");
    first.client.submit(ROOM, "keep", "cid-2");
    first.client.discard("cid-1");
    assert.equal(first.client.outbox.has("cid-1"), false);
    assert.deepEqual(
      savedOutbox(storage).map((item) => item.clientId),
      ["cid-2"]
    );
    first.client.connected();
    first.client.receive(joinedFrame([], { lastSeq: 5 }));
    assert.deepEqual(
      first.sentOf("send").map((frame) => frame.client_id),
      ["cid-2"]
    );
    const second = harness({ storage });
    assert.deepEqual(
      second.client.pendingIn(ROOM).map((item) => item.clientId),
      ["cid-2"]
    );
  });

  test("unreadable storage gives an empty outbox", () => {
    for (const saved of ["not json", "{}", "null", JSON.stringify([{ clientId: 7 }, null])]) {
      const storage = fakeStorage({ [STORAGE_KEY]: saved });
      const h = harness({ storage });
      assert.equal(h.client.outbox.size, 0, saved);
    }
  });

  test("a storage that throws on write leaves the outbox working in memory", () => {
    const storage = {
      getItem: () => null,
      setItem: () => {
        throw new Error("QuotaExceededError");
      },
    };
    const h = harness({ storage });
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    assert.equal(h.sentOf("send").length, 1);
    h.client.receive({ type: "ack", room: ROOM, client_id: "cid-1", id: 1006, seq: 6 });
    assert.equal(h.callsOf("acked").length, 1);
  });
});

describe("one's own stored message settles the outbox", () => {
  // Every way a stored message of one's own reaches the client: each settles its outbox
  // item, in memory and in storage, whatever became of the ack.
  const OWN = { clientId: "cid-1" };

  test("a broadcast before the ack: kept nowhere, not resent, and the late ack changes nothing", () => {
    const storage = fakeStorage();
    const h = harness({ storage });
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.receive(messageFrame(6, OWN));
    assert.equal(h.client.outbox.has("cid-1"), false);
    assert.deepEqual(savedOutbox(storage), []);
    h.client.receive({ type: "ack", room: ROOM, client_id: "cid-1", id: 1006, seq: 6 });
    h.advance(DEFAULTS.ackTimeoutMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("send").length, 1);
    assert.deepEqual(h.shownSeqs(), [6]);
  });

  test("a replay after a reconnect that holds the message: it is not sent again", () => {
    const storage = fakeStorage();
    const h = harness({ storage });
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.disconnected(); // stored, but the ack was cut off
    h.client.connected();
    h.client.receive(joinedFrame([msg(6, OWN)], { lastSeq: 6 }));
    assert.equal(h.sentOf("send").length, 1);
    assert.deepEqual(h.client.pendingIn(ROOM), []);
    assert.deepEqual(savedOutbox(storage), []);
  });

  test("a page of history that holds it", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.showMessage(ROOM, msg(3, OWN), true);
    assert.deepEqual(h.client.pendingIn(ROOM), []);
  });

  test("a failed message whose stored copy comes later is not restored as failed by a reload", () => {
    const storage = fakeStorage();
    const h = harness({ storage, options: { maxTries: 1 } });
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    h.advance(DEFAULTS.ackTimeoutMs + 1);
    h.client.receive({ type: "typing", room: ROOM, user: "bob" });
    h.client.tick();
    assert.equal(item.state, "failed");
    h.client.receive(messageFrame(6, OWN));
    assert.deepEqual(savedOutbox(storage), []);
    assert.deepEqual(harness({ storage }).client.pendingIn(ROOM), []);
  });

  test("rendered by the page after a reload, or in a thread's page (markShown), watched or not", () => {
    for (const watched of [true, false]) {
      const storage = fakeStorage();
      harness({ storage }).client.submit(ROOM, "hello", "cid-1");
      const reloaded = harness({ storage });
      if (watched) reloaded.client.watch(ROOM, 5);
      reloaded.client.markShown(ROOM, msg(6, OWN));
      assert.deepEqual(reloaded.client.pendingIn(ROOM), [], `watched: ${watched}`);
      assert.deepEqual(savedOutbox(storage), []);
    }
  });

  test("not another user's message, one in another room, or any without `me` (the lobby)", () => {
    const cases = [
      { me: "alice", message: Object.assign(msg(6, OWN), { author: "bob" }) },
      { me: "alice", message: msg(6, { ...OWN, room: OTHER }), room: OTHER },
      { me: null, message: msg(6, OWN) },
    ];
    for (const { me, message, room = ROOM } of cases) {
      const h = harness({ me });
      joinedAll(h, { [ROOM]: 5, [OTHER]: 5 });
      h.client.submit(ROOM, "hello", "cid-1");
      h.client.receive({ type: "message", room, message });
      assert.deepEqual(
        h.client.pendingIn(ROOM).map((item) => item.clientId),
        ["cid-1"],
        JSON.stringify({ me, room, author: message.author })
      );
    }
  });
});

// --- Reconnect ------------------------------------------------------------------------------

describe("reconnect", () => {
  test("a reconnect rejoins every watched room since its cursor", () => {
    const h = harness();
    joinedAll(h, { [ROOM]: 5, [OTHER]: 9 });
    h.client.receive(messageFrame(6));
    h.client.disconnected();
    h.client.connected();
    const joins = h.sentOf("join").map((frame) => [frame.room, frame.since]);
    assert.deepEqual(joins, [
      [ROOM, 6],
      [OTHER, 9],
    ]);
  });

  test("a sent but unacked message is resent with the same client_id after a reconnect and rejoin", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    const firstRef = lastSendRef(h, "cid-1");
    h.client.disconnected();
    h.client.connected();
    assert.equal(h.sentOf("send").length, 1, "not before the room is joined again");
    h.client.receive(joinedFrame([], { lastSeq: 5 }));
    const sends = h.sentOf("send");
    assert.equal(sends.length, 2);
    assert.equal(sends[1].client_id, "cid-1");
    assert.equal(sends[1].body, "hello");
    assert.notEqual(sends[1].ref, firstRef);
  });

  test("a resync in flight when the socket drops is asked again after the reconnect", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(7));
    assert.equal(h.sentOf("join").length, 1);
    h.client.disconnected();
    h.client.connected();
    const joins = h.sentOf("join");
    assert.equal(joins.length, 2);
    assert.equal(joins[1].since, 5);
    h.client.receive(joinedFrame([msg(6), msg(7)], { lastSeq: 7 }));
    assert.equal(h.client.rooms.get(ROOM).cursor, 7);
    assert.equal(h.sentOf("join").length, 2);
  });
});

// --- Dead connection ------------------------------------------------------------------------

describe("dead connection", () => {
  const { pingAfterMs, pongTimeoutMs, keepaliveMs } = DEFAULTS;

  test("after pingAfterMs of silence tick sends exactly one ping", () => {
    const h = harness();
    joinedAt(h, 5);
    h.advance(pingAfterMs);
    assert.equal(h.client.tick(), null);
    assert.deepEqual(h.sentOf("ping"), [], "not at exactly pingAfterMs");
    h.advance(1);
    assert.equal(h.client.tick(), null);
    assert.equal(h.sentOf("ping").length, 1);
    assert.equal(typeof h.sentOf("ping")[0].ref, "string");
    h.advance(pongTimeoutMs / 2);
    h.client.tick();
    assert.equal(h.sentOf("ping").length, 1, "one ping outstanding at a time");
  });

  test("tick returns reconnect when a ping goes unanswered for pongTimeoutMs", () => {
    const h = harness();
    joinedAt(h, 5);
    h.advance(pingAfterMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("ping").length, 1);
    h.advance(pongTimeoutMs);
    assert.equal(h.client.tick(), null, "not at exactly pongTimeoutMs");
    h.advance(1);
    assert.equal(h.client.tick(), "reconnect");
    assert.equal(h.sentOf("ping").length, 1);
  });

  test("any frame arriving clears the outstanding ping", () => {
    const h = harness();
    joinedAt(h, 5);
    h.advance(pingAfterMs + 1);
    h.client.tick();
    assert.equal(h.sentOf("ping").length, 1);
    h.advance(pongTimeoutMs / 2);
    h.client.receive({ type: "typing", room: ROOM, user: "bob" });
    h.advance(pongTimeoutMs);
    assert.equal(h.client.tick(), null);
    assert.equal(h.sentOf("ping").length, 1, "not quiet long enough for another ping");
  });

  test("a pong clears the outstanding ping and a later silence pings again", () => {
    const h = harness();
    joinedAt(h, 5);
    h.advance(pingAfterMs + 1);
    h.client.tick();
    h.advance(1000);
    h.client.receive({ type: "pong", ref: h.sentOf("ping")[0].ref, rooms: { [ROOM]: 5 } });
    h.advance(pongTimeoutMs + 1);
    assert.equal(h.client.tick(), null);
    h.advance(pingAfterMs);
    assert.equal(h.client.tick(), null);
    assert.equal(h.sentOf("ping").length, 2);
  });

  test("a ping is sent after keepaliveMs without sending even while frames keep arriving", () => {
    const h = harness();
    joinedAt(h, 5);
    const start = h.clock;
    const step = pingAfterMs / 2;
    while (h.clock - start <= keepaliveMs) {
      assert.deepEqual(h.sentOf("ping"), [], `no ping at +${h.clock - start}ms`);
      h.advance(step);
      h.client.receive({ type: "typing", room: ROOM, user: "bob" });
      assert.equal(h.client.tick(), null);
    }
    assert.equal(h.sentOf("ping").length, 1);
    h.advance(step);
    h.client.receive({ type: "typing", room: ROOM, user: "bob" });
    h.client.tick();
    assert.equal(h.sentOf("ping").length, 1, "sending the ping resets the keepalive");
  });

  test("ping() asks at once, once, and only while connected (the page calls it on `online`)", () => {
    const h = harness();
    h.client.watch(ROOM, 5);
    h.client.ping();
    assert.deepEqual(h.sent, [], "not while disconnected");
    joinedAt(h, 5);
    h.client.ping();
    h.client.ping();
    assert.equal(h.sentOf("ping").length, 1, "one ping outstanding at a time");
    h.advance(pongTimeoutMs + 1);
    assert.equal(h.client.tick(), "reconnect");
  });

  test("a sent frame postpones the keepalive ping", () => {
    const h = harness();
    joinedAt(h, 5);
    const step = pingAfterMs / 2;
    h.advance(keepaliveMs - step);
    h.client.receive({ type: "typing", room: ROOM, user: "bob" });
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.receive({ type: "ack", room: ROOM, client_id: "cid-1", id: 1006, seq: 6 });
    h.advance(2 * step);
    h.client.receive({ type: "typing", room: ROOM, user: "bob" });
    h.client.tick();
    assert.deepEqual(h.sentOf("ping"), []);
  });
});

// --- Disconnected ---------------------------------------------------------------------------

describe("disconnected", () => {
  test("tick sends nothing while disconnected, not even a ping", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.disconnected();
    for (let i = 0; i < 5; i += 1) {
      h.advance(DEFAULTS.keepaliveMs + DEFAULTS.pingAfterMs + DEFAULTS.pongTimeoutMs);
      assert.equal(h.client.tick(), null);
    }
    assert.deepEqual(h.sent, []);
  });

  test("an outstanding ping is dropped by a disconnect and does not doom the next connection", () => {
    const h = harness();
    joinedAt(h, 5);
    h.advance(DEFAULTS.pingAfterMs + 1);
    h.client.tick();
    h.client.disconnected();
    h.advance(DEFAULTS.pongTimeoutMs + 1);
    h.client.connected();
    assert.equal(h.client.tick(), null);
  });

  test("pending messages wait while disconnected, past their ack timeout", () => {
    const h = harness();
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    h.client.disconnected();
    h.client.submit(ROOM, "later", "cid-2");
    for (let i = 0; i < DEFAULTS.maxTries + 2; i += 1) {
      h.advance(DEFAULTS.ackTimeoutMs + 1);
      h.client.tick();
    }
    assert.equal(h.sentOf("send").length, 1);
    assert.equal(item.state, "pending");
    assert.deepEqual(h.callsOf("failed"), []);
    h.client.connected();
    h.client.receive(joinedFrame([], { lastSeq: 5 }));
    assert.deepEqual(
      h.sentOf("send").map((frame) => frame.client_id),
      ["cid-1", "cid-1"]
    );
    h.client.receive({ type: "ack", room: ROOM, client_id: "cid-1", id: 1006, seq: 6 });
    assert.deepEqual(
      h.sentOf("send").map((frame) => frame.client_id),
      ["cid-1", "cid-1", "cid-2"]
    );
  });
});

// --- Resyncs, failures and the outbox together ----------------------------------------------

describe("resyncs, failures and the outbox together", () => {
  test("a resync reply on the same connection does not resend a message still awaiting its ack", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.submit(ROOM, "hello", "cid-1");
    h.client.receive(messageFrame(7)); // a gap: resync since 5
    h.client.receive(joinedFrame([msg(6), msg(7)], { lastSeq: 7 }));
    assert.equal(h.sentOf("send").length, 1);
  });

  test("a long catch-up after a reconnect does not use up a pending message's tries", () => {
    const h = harness();
    joinedAt(h, 5);
    const item = h.client.submit(ROOM, "hello", "cid-1");
    h.client.disconnected();
    h.client.connected();
    // 2000 missed messages arrive in pages of 500.
    let since = 5;
    for (let page = 0; page < 4; page += 1) {
      h.client.receive(joinedFrame(seqs(since + 1, since + 500), { lastSeq: 2005, hasMore: page < 3 }));
      since += 500;
    }
    assert.equal(h.sentOf("send").length, 2, "one send, one resend after the reconnect");
    h.client.disconnected();
    h.client.connected();
    h.client.receive(joinedFrame([], { lastSeq: 2005 }));
    assert.equal(item.state, "pending");
    assert.equal(h.sentOf("send").length, 3);
  });

  for (const code of ["server_error", "unavailable"]) {
    test(`a join answered by ${code} does not leave the room unable to resync`, () => {
      const h = harness();
      h.client.watch(ROOM, 5);
      h.client.connected();
      const join = h.sentOf("join")[0];
      h.client.receive({ type: "error", ref: join.ref, code, message: "Try again." });
      h.client.receive({ type: "pong", rooms: { [ROOM]: 9 } });
      const joins = h.sentOf("join");
      assert.equal(joins.length, 2);
      assert.equal(joins[1].since, 5);
    });
  }
});

describe("reactions", () => {
  const THUMBS = [{ emoji: "👍", count: 1, users: ["bob"] }];

  test("a live change of reactions calls view.reacted once with the summary and takes its seq", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(4));
    h.client.receive(reactionsFrame(4, 6, THUMBS));
    h.client.receive(reactionsFrame(4, 6, THUMBS)); // the same event again: nothing
    assert.deepEqual(h.callsOf("reacted"), [[ROOM, { id: 1004, rev: 6, reactions: THUMBS }]]);
    assert.equal(h.client.rooms.get(ROOM).cursor, 6);
    assert.equal(h.callsOf("edited").length, 0);
    assert.equal(h.sentOf("join").length, 0);
  });

  test("an older change arriving after a newer one is ignored", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(4));
    h.client.receive(editedFrame(4, 7, "fixed")); // 6 not yet heard: a gap
    h.client.receive(reactionsFrame(4, 6, THUMBS)); // fills it, but the line is at rev 7
    assert.equal(h.callsOf("reacted").length, 0);
    assert.equal(h.client.rooms.get(ROOM).cursor, 7);
  });

  test("reactions on a message this client never loaded are accounted for, not shown", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(reactionsFrame(2, 6, THUMBS));
    assert.equal(h.callsOf("reacted").length, 0);
    assert.equal(h.client.rooms.get(ROOM).cursor, 6);
    assert.equal(h.sentOf("join").length, 0);
  });

  test("a missed change of reactions leaves a gap; the replay brings the message with them", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(4));
    h.client.receive(reactionsFrame(4, 7, THUMBS)); // 6 was lost
    const [join] = h.sentOf("join");
    assert.equal(join.since, 5);
    const replayed = Object.assign(changed(4, 7), { edited: null, reactions: THUMBS });
    h.client.receive(Object.assign(joinedFrame([replayed], { lastSeq: 7 }), { ref: join.ref }));
    assert.equal(h.client.rooms.get(ROOM).cursor, 7);
    assert.equal(h.client.rooms.get(ROOM).hasGap(), false);
  });

  test("react asks with the emoji and whether to put it on, once joined", () => {
    const h = harness();
    assert.equal(h.client.react(ROOM, 1004, "👍", true), false); // not joined: nothing sent
    joinedAt(h, 5);
    assert.equal(h.client.react(ROOM, 1004, "👍", false), true);
    const [frame] = h.sentOf("react");
    assert.deepEqual({ ...frame, ref: undefined }, { type: "react", room: ROOM, id: 1004, emoji: "👍", on: false, ref: undefined });
  });
});

describe("replies and threads", () => {
  const SUMMARY = { count: 1, last_seq: 6, last_at: "2026-11-25T21:41:00+00:00" };
  const threadFrame = (seq, rev) => ({ type: "message_thread", room: ROOM, id: 1000 + seq, seq: rev, thread_summary: SUMMARY });

  test("a send says what it replies to and which thread it goes in, also after a reload", () => {
    const storage = fakeStorage();
    const h = harness({ storage });
    joinedAt(h, 5);
    h.client.submit(ROOM, "yes", "c1", { reply_to: 1004, thread: 1003, also_in_room: true });
    h.client.submit(ROOM, "plain", "c2");
    const [reply] = h.sentOf("send");
    assert.deepEqual([reply.reply_to, reply.thread, reply.also_in_room], [1004, 1003, true]);
    // A reload resends it with the same place among replies.
    const again = harness({ storage });
    again.client.watch(ROOM, 5);
    again.client.connected();
    again.client.receive(joinedFrame([], { lastSeq: 5 }));
    const resent = again.sentOf("send").find((frame) => frame.client_id === "c1");
    assert.deepEqual([resent.reply_to, resent.thread, resent.also_in_room], [1004, 1003, true]);
    h.client.receive({ type: "ack", room: ROOM, client_id: "c1", id: 1006, seq: 6 });
    const [, plain] = h.sentOf("send");
    assert.equal("reply_to" in plain || "thread" in plain || "also_in_room" in plain, false);
  });

  test("a thread summary change calls view.threaded once and takes its seq", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(3));
    h.client.receive(messageFrame(6));
    h.client.receive(threadFrame(3, 7));
    h.client.receive(threadFrame(3, 7)); // the same event again: nothing
    assert.deepEqual(h.callsOf("threaded"), [[ROOM, { id: 1003, rev: 7, thread_summary: SUMMARY }]]);
    assert.equal(h.client.rooms.get(ROOM).cursor, 7);
    assert.equal(h.sentOf("join").length, 0);
  });

  test("a missed thread summary change leaves a gap that a replay of the root fills", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(3));
    h.client.receive(messageFrame(6)); // the reply; its summary change (7) is lost
    h.client.receive(messageFrame(8));
    const [join] = h.sentOf("join");
    assert.equal(join.since, 6);
    const root = Object.assign(changed(3, 7), { edited: null, thread_summary: SUMMARY });
    h.client.receive(Object.assign(joinedFrame([root], { lastSeq: 8 }), { ref: join.ref }));
    assert.equal(h.client.rooms.get(ROOM).hasGap(), false);
    assert.equal(h.callsOf("edited").length, 1); // the view redraws the root from the MSG
  });

  test("thread and threadRead ask once joined", () => {
    const h = harness();
    assert.equal(h.client.thread(ROOM, 1003), false);
    joinedAt(h, 5);
    assert.equal(h.client.thread(ROOM, 1003), true);
    assert.equal(h.client.threadRead(ROOM, 1003, 7), true);
    assert.deepEqual(h.sentOf("thread").map((f) => f.id), [1003]);
    assert.deepEqual(h.sentOf("thread_read").map((f) => [f.id, f.seq]), [[1003, 7]]);
  });
});

describe("edits and deletions", () => {
  test("a live edit calls view.edited once, takes its seq, and resyncs nothing", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(4));
    h.client.receive(editedFrame(4, 6, "fixed"));
    h.client.receive(editedFrame(4, 6, "fixed")); // the same event again: nothing
    const edits = h.callsOf("edited");
    assert.equal(edits.length, 1);
    assert.equal(edits[0][1].body, "fixed");
    assert.equal(h.client.rooms.get(ROOM).cursor, 6);
    h.client.receive(messageFrame(7));
    assert.equal(h.sentOf("join").length, 0);
    assert.deepEqual(h.shownSeqs(), [7]);
  });

  test("an edit of an older message this client never loaded is not shown, but a history page shows it", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(editedFrame(2, 6, "fixed"));
    assert.equal(h.callsOf("edited").length, 0);
    assert.deepEqual(h.shownSeqs(), []);
    assert.equal(h.client.rooms.get(ROOM).cursor, 6);
    h.client.showMessage(ROOM, changed(2, 6, { body: "fixed" }), true); // "load older"
    assert.deepEqual(h.shownSeqs(), [2]);
  });

  test("a message new to the client is shown by a replay even when it was edited since", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.disconnected();
    h.client.connected();
    h.client.receive(joinedFrame([changed(6, 7, { body: "posted, then fixed" })], { lastSeq: 7 }));
    assert.deepEqual(h.callsOf("message").map(([, m]) => m.body), ["posted, then fixed"]);
    assert.equal(h.callsOf("edited").length, 0);
  });

  test("a live deletion calls view.deleted once and takes its seq", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(5));
    h.client.receive(deletedFrame(5, 6));
    h.client.receive(deletedFrame(5, 6));
    assert.equal(h.callsOf("deleted").length, 1);
    assert.equal(h.callsOf("deleted")[0][1].id, 1005);
    assert.equal(h.client.rooms.get(ROOM).cursor, 6);
    assert.equal(h.sentOf("join").length, 0);
  });

  test("a missed edit is a gap: the resync replays it, and the message is edited, not shown again", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(3));
    h.client.receive(messageFrame(7)); // 6, the edit of 3, was lost
    const joins = h.sentOf("join");
    assert.equal(joins.length, 1);
    assert.equal(joins[0].since, 5);
    // The replay is ordered by rev: the new message 7, then message 3 as edited at 8.
    h.client.receive(joinedFrame([msg(7), changed(3, 8)], { lastSeq: 8 }));
    assert.deepEqual(h.shownSeqs(), [7]);
    assert.deepEqual(h.callsOf("edited").map(([, m]) => [m.seq, m.rev]), [[3, 8]]);
    assert.equal(h.client.rooms.get(ROOM).cursor, 8);
    assert.equal(h.client.rooms.get(ROOM).hasGap(), false);
  });

  test("a replay tells of a deletion of a shown message; a message never seen and deleted stays unseen", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.markShown(ROOM, msg(4));
    h.client.disconnected();
    h.client.connected();
    h.client.receive(joinedFrame([changed(6, 8, { deleted: true }), changed(4, 9, { deleted: true })], { lastSeq: 9 }));
    assert.deepEqual(h.callsOf("deleted").map(([, m]) => m.id), [1004]);
    assert.deepEqual(h.shownSeqs(), []);
    assert.equal(h.client.rooms.get(ROOM).cursor, 9);
  });

  test("an edit older than what was shown changes nothing", () => {
    const h = harness();
    joinedAt(h, 9);
    h.client.markShown(ROOM, changed(3, 9, { body: "second edit" }));
    h.client.disconnected();
    h.client.connected();
    h.client.receive(joinedFrame([changed(3, 7, { body: "first edit" })], { lastSeq: 9 }));
    assert.equal(h.callsOf("edited").length, 0);
  });

  test("a has_more replay continues from the last rev in it, not the last seq", () => {
    const h = harness();
    joinedAt(h, 5);
    h.client.receive(messageFrame(12));
    h.client.receive(joinedFrame([msg(6), changed(2, 9)], { lastSeq: 12, hasMore: true }));
    const joins = h.sentOf("join");
    assert.equal(joins.length, 2);
    assert.equal(joins[1].since, 9);
  });

  test("edit, remove and read send their frames only when the room is joined", () => {
    const h = harness();
    h.client.watch(ROOM, 5);
    assert.equal(h.client.edit(ROOM, 1005, "new"), false);
    joinedAt(h, 5);
    assert.equal(h.client.edit(ROOM, 1005, "new"), true);
    assert.equal(h.client.remove(ROOM, 1005), true);
    assert.equal(h.client.read(ROOM, 5), true);
    assert.deepEqual(
      h.sent.map(({ ref, ...frame }) => frame),
      [
        { type: "edit", room: ROOM, id: 1005, body: "new" },
        { type: "delete", room: ROOM, id: 1005 },
        { type: "read", room: ROOM, seq: 5 },
      ]
    );
    assert.ok(h.sent.every((frame) => typeof frame.ref === "string"));
  });
});

describe("quiet rooms", () => {
  test("a room watched quietly joins with quiet: true, and setQuiet rejoins to change it", () => {
    const h = harness();
    h.client.watch(ROOM, 5, { quiet: true });
    h.client.connected();
    assert.equal(h.sentOf("join")[0].quiet, true);
    h.client.receive(joinedFrame([], { lastSeq: 5 }));
    h.client.setQuiet(ROOM, false);
    const joins = h.sentOf("join");
    assert.equal(joins.length, 2);
    assert.equal(joins[1].quiet, undefined);
    assert.equal(joins[1].since, 5);
    h.client.setQuiet(ROOM, false); // no change: nothing sent
    assert.equal(h.sentOf("join").length, 2);
  });
});
