// The browser client's frames against the protocol's JSON Schema (chat/protocol/schema.json),
// the same file the Python tests check the server's frames against.
// Run with: node --test tests/js/ (after `npm ci` in tests/js, which `make test` runs)
"use strict";

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { ChatClient } from "../../chat/static/chat/sync.js";
import { ROOM, joinedFrame } from "./frames.js";

// ajv is a CommonJS package of tests/js (package.json); require() finds it beside this file.
const require = createRequire(import.meta.url);
let Ajv2020;
try {
  Ajv2020 = require("ajv/dist/2020");
} catch (error) {
  throw new Error("ajv is missing: run `npm ci` in tests/js (`make test` does)", { cause: error });
}

const schema = JSON.parse(
  readFileSync(new URL("../../chat/protocol/schema.json", import.meta.url), "utf8"),
);

// Formats are annotations here; the ISO times are checked by their pattern.
const ajv = new Ajv2020({ allErrors: true, allowUnionTypes: true, validateFormats: false });
ajv.addSchema(schema);

function validator(definition) {
  return ajv.getSchema(`${schema.$id}#/$defs/${definition}`);
}

// The frame's own definition (by its type) and the union of its side must both accept it.
function assertConforms(side, frame) {
  const own = validator(`${side}.${frame.type}`);
  assert.ok(own, `no ${side} frame has type ${JSON.stringify(frame.type)}`);
  assert.ok(own(frame), `${side} frame ${JSON.stringify(frame)}: ${ajv.errorsText(own.errors)}`);
  const any = validator(`${side}_frame`);
  assert.ok(any(frame), `${side}_frame rejects ${JSON.stringify(frame)}`);
}

const TIME = "2026-11-25T21:40:00.123456+00:00";

function msg(seq, { id = 1000 + seq, clientId = null, rev = seq } = {}) {
  return {
    id,
    seq,
    rev,
    room: ROOM,
    author: "alice",
    author_display: "Alice",
    author_avatar: "",
    body: `message ${seq}`,
    html: `<p>message ${seq}</p>`,
    created: TIME,
    edited: rev === seq ? null : TIME,
    deleted: false,
    client_id: clientId,
    reactions: rev === seq ? [] : [{ emoji: "👍", count: 2, users: ["alice", "bob"] }],
    files: [],
    reply_to: null,
    thread: null,
    thread_summary: null,
  };
}


// A client on a fake clock whose socket records every frame it writes, and the server
// frames fed to it.
function harness() {
  const h = { clock: 1000000, sent: [], received: [] };
  h.client = new ChatClient({
    send(frame) {
      h.sent.push(JSON.parse(JSON.stringify(frame))); // what goes on the wire
      return true;
    },
    now: () => h.clock,
  });
  h.receive = (frame) => {
    h.received.push(frame);
    h.client.receive(frame);
  };
  return h;
}

describe("the client's frames conform to the protocol's schema", () => {
  test("every frame sync.js sends: join (latest, since, quiet), send, ping, edit, delete, read, react, thread, thread_read", () => {
    const h = harness();
    h.client.watch(ROOM);
    h.client.watch("random", 12, { quiet: true });
    h.client.connected();
    const join = h.sent.find((frame) => frame.type === "join" && frame.room === ROOM);
    h.receive(joinedFrame(join.ref, [msg(1)], 1));
    h.client.submit(ROOM, "hello", "3f1c-client-id");
    h.client.submit(ROOM, "quoted", "reply-1", { reply_to: 1001 });
    h.client.submit(ROOM, "threaded", "reply-2", { thread: 1001, also_in_room: true, reply_to: 1001 });
    h.client.thread(ROOM, 1001);
    h.client.threadRead(ROOM, 1001, 1);
    h.client.edit(ROOM, 1001, "changed");
    h.client.remove(ROOM, 1001);
    h.client.read(ROOM, 1);
    h.client.react(ROOM, 1001, "🎉", true);
    h.client.react(ROOM, 1001, "❤️", false);
    h.client.ping();
    h.client.setQuiet(ROOM, true);

    assert.deepEqual(
      new Set(h.sent.map((frame) => frame.type)),
      new Set(["join", "send", "edit", "delete", "read", "react", "ping", "thread", "thread_read"]),
    );
    assert.ok(h.sent.some((frame) => frame.type === "join" && frame.since === 12 && frame.quiet));
    for (const frame of h.sent) assertConforms("client", frame);
  });

  test("a send with files carries their ids, on every try, and conforms", () => {
    const h = harness();
    h.client.watch(ROOM, 0);
    h.client.connected();
    h.receive(joinedFrame(h.sent[0].ref, [], 0));
    h.client.submit(ROOM, "", "id-files", { attachments: [7, 3] });
    h.clock += 60000;
    h.client.tick();
    const sends = h.sent.filter((frame) => frame.type === "send");
    assert.ok(sends.length >= 2);
    for (const frame of sends) assert.deepEqual(frame.attachments, [7, 3]);
    h.receive({ type: "ack", room: ROOM, client_id: "id-files", id: 1001, seq: 1 });
    h.client.submit(ROOM, "no files", "id-plain", { attachments: [] });
    const plain = h.sent.filter((frame) => frame.client_id === "id-plain");
    assert.ok(plain.length === 1 && !("attachments" in plain[0]));
    for (const frame of h.sent) assertConforms("client", frame);
  });

  test("a message with files conforms, and one with a file that is not an id does not", () => {
    const file = {
      id: 9, name: "plan.pdf", size: 48213, type: "application/pdf", image: false,
      width: null, height: null, url: "/files/9/plan.pdf", thumb_url: null,
    };
    assertConforms("server", { type: "message", room: ROOM, message: { ...msg(1), files: [file] } });
    const own = validator("server.message");
    assert.equal(own({ type: "message", room: ROOM, message: { ...msg(1), files: [{ ...file, id: "9" }] } }), false);
    assert.equal(validator("client.send")({ type: "send", room: ROOM, body: "", client_id: "c", attachments: [1, 1] }), false);
  });

  test("unwatching a room (left in another tab) sends a conforming leave, once", () => {
    const h = harness();
    h.client.watch("random", 12, { quiet: true });
    h.client.connected();
    h.client.unwatch("random");
    h.client.unwatch("random");
    const leaves = h.sent.filter((frame) => frame.type === "leave");
    assert.equal(leaves.length, 1);
    assert.equal(leaves[0].room, "random");
    assert.equal(h.client.rooms.has("random"), false);
    for (const frame of h.sent) assertConforms("client", frame);
  });

  test("a resend after an ack timeout is still a conforming send", () => {
    const h = harness();
    h.client.watch(ROOM, 0);
    h.client.connected();
    h.receive(joinedFrame(h.sent[0].ref, [], 0));
    h.client.submit(ROOM, "hello", "id-1");
    h.clock += 60000;
    h.client.tick();
    assert.ok(h.sent.filter((frame) => frame.type === "send").length >= 2);
    for (const frame of h.sent) assertConforms("client", frame);
  });

  test("the server frames fed to the client here conform too", () => {
    const frames = [
      joinedFrame("c1", [msg(1), msg(2, { rev: 3, clientId: "id-1" })], 3),
      { type: "ack", room: ROOM, client_id: "id-1", id: 1002, seq: 2, ref: "c2" },
      { type: "message", room: ROOM, message: msg(4) },
      { type: "message_edited", room: ROOM, seq: 5, message: msg(4, { rev: 5 }) },
      { type: "message_deleted", room: ROOM, id: 1004, seq: 6 },
      { type: "message_reactions", room: ROOM, id: 1001, seq: 7, reactions: [{ emoji: "🎉", count: 1, users: ["bob"] }] },
      { type: "message_reactions", room: ROOM, id: 1001, seq: 8, reactions: [] },
      { type: "message_thread", room: ROOM, id: 1001, seq: 9, thread_summary: { count: 1, last_seq: 8, last_at: TIME } },
      {
        type: "message",
        room: ROOM,
        message: Object.assign(msg(8), {
          reply_to: { id: 1001, seq: 1, author: "alice", excerpt: "message 1", deleted: false },
          thread: { root: 1001, also_in_room: false },
        }),
      },
      { type: "thread", room: ROOM, root: msg(1), messages: [msg(8)], has_more: false, read: null, ref: "c5" },
      { type: "thread_read", room: ROOM, id: 1001, seq: 9 },
      { type: "pong", rooms: { [ROOM]: 6 }, live: true, ref: "c3" },
      { type: "pong", rooms: {}, live: false },
      {
        type: "membership",
        room: ROOM,
        name: "General",
        member: true,
        starred: false,
        notify: "mute",
        owner: false,
        private: false,
        direct: false,
        people: null,
        last_seq: 6,
        read: null,
        unread: 0,
      },
      { type: "room_updated", room: ROOM, name: "General", topic: "Say hello" },
      {
        type: "room_opened",
        room: ROOM,
        name: "General",
        topic: "Say hello",
        private: false,
        direct: false,
        members: 2,
        last_seq: 6,
      },
      { type: "profile", user: "alice" },
      { type: "error", code: "rate_limited", message: "Slow down.", retry_after: 1.5, ref: "c4" },
    ];
    for (const frame of frames) assertConforms("server", frame);
  });

  test("the schema catches a frame off the contract", () => {
    const bad = [
      ["client", { type: "send", room: ROOM, body: "hi", clientId: "x" }],
      ["client", { type: "join", room: "" }],
      ["client", { type: "ping", ref: "r".repeat(65) }],
      ["server", { type: "message", room: ROOM, message: { ...msg(1), rev: undefined } }],
      ["server", { type: "error", code: "oops", message: "?" }],
    ];
    for (const [side, frame] of bad) {
      const own = validator(`${side}.${frame.type}`);
      assert.equal(own(JSON.parse(JSON.stringify(frame))), false, JSON.stringify(frame));
    }
  });
});
