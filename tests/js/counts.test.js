// Unit tests of the live room counts (chat/static/chat/counts.js), the file the lobby and the
// room page's sidebar run. Run with: node --test tests/js/
"use strict";

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { RoomCounts } from "../../chat/static/chat/counts.js";

function counts({ read = 10, unread = 2, lastSeq = 12, username = "alice" } = {}) {
  const rendered = [];
  const c = new RoomCounts({
    username,
    rooms: [
      { slug: "general", lastSeq, read, unread },
      { slug: "random", lastSeq: 3, read: null, unread: 0 },
    ],
    render: (slug) => rendered.push(slug),
  });
  return { c, rendered };
}

const msg = (seq, author = "bob") => ({ id: 100 + seq, seq, author, body: "hi" });

describe("unread counts", () => {
  test("start from the page's count and grow with others' new messages only", () => {
    const { c, rendered } = counts();
    assert.equal(c.unread("general"), 2);
    c.message("general", msg(13));
    c.message("general", msg(14, "alice")); // one's own
    c.message("general", msg(12)); // already counted by the page
    assert.equal(c.unread("general"), 3);
    assert.deepEqual(rendered, ["general"]);
  });

  test("a reply only in a thread is not the room's news; one also in the room is", () => {
    const { c } = counts();
    c.message("general", { ...msg(13), thread: { root: 101, also_in_room: false } });
    assert.equal(c.unread("general"), 2);
    c.message("general", { ...msg(14), thread: { root: 101, also_in_room: true } });
    assert.equal(c.unread("general"), 3);
  });

  test("a room never read has nothing unread, whatever arrives", () => {
    const { c } = counts();
    c.message("random", msg(4));
    assert.equal(c.unread("random"), 0);
  });

  test("a read mark from any tab clears what it covers", () => {
    const { c } = counts();
    c.message("general", msg(13));
    c.message("general", msg(14));
    c.read({ type: "read", room: "general", seq: 13 });
    assert.equal(c.unread("general"), 1); // the page's 2 were ≤ 12, and 13 is read
    c.read({ type: "read", room: "general", seq: 14 });
    assert.equal(c.unread("general"), 0);
  });

  test("a read mark behind the page's last seq leaves the page's count", () => {
    const { c } = counts();
    c.read({ type: "read", room: "general", seq: 11 });
    assert.equal(c.unread("general"), 2);
  });

  test("messages in the room on screen are not unread", () => {
    const { c } = counts();
    c.visible = "general";
    c.message("general", msg(13));
    assert.equal(c.unread("general"), 2);
  });

  test("an anonymous visitor has nothing unread", () => {
    const { c } = counts({ username: null });
    c.message("general", msg(13));
    assert.equal(c.unread("general"), 2); // only what the page said (0 for anonymous pages)
  });

  test("a joined reply with the stored mark applies it", () => {
    const { c } = counts();
    c.joined({ type: "joined", room: "general", online: [], guests: 0, read: 12 });
    assert.equal(c.unread("general"), 0);
  });
});

describe("rooms joined after the page was made", () => {
  test("a room added from a membership frame counts from its own mark and count", () => {
    const { c } = counts();
    c.add({ slug: "new", lastSeq: 5, read: 3, unread: 2 });
    assert.equal(c.unread("new"), 2);
    c.message("new", msg(6));
    assert.equal(c.unread("new"), 3);
  });

  test("adding a room counted already keeps its live counts", () => {
    const { c } = counts();
    c.message("general", msg(13));
    c.add({ slug: "general", lastSeq: 13, read: 13, unread: 0 });
    assert.equal(c.unread("general"), 3);
  });
});

describe("joining and leaving a listed room (the lobby)", () => {
  const membership = (member, read, unread = 0, lastSeq = 3) => ({
    type: "membership",
    room: "random",
    member,
    read,
    unread,
    last_seq: lastSeq,
  });

  test("a room joined counts others' messages after the mark; one left counts nothing", () => {
    const { c, rendered } = counts();
    c.message("random", msg(4));
    assert.equal(c.unread("random"), 0); // not the user's room: nothing unread
    c.membership(membership(true, 4, 0, 4));
    assert.deepEqual(rendered, ["random"]);
    c.message("random", msg(5));
    assert.equal(c.unread("random"), 1);
    c.membership(membership(false, 4));
    assert.equal(c.unread("random"), 0);
    c.message("random", msg(6));
    assert.equal(c.unread("random"), 0);
  });

  test("a star or a change of owners in a room counted already keeps its counts", () => {
    const { c, rendered } = counts();
    c.message("general", msg(13));
    c.membership({ ...membership(true, 10, 2, 12), room: "general" });
    assert.equal(c.unread("general"), 3);
    assert.deepEqual(rendered, ["general"]); // the message's render only
  });
});

describe("online counts", () => {
  test("joined sets, presence and guests frames update, per room", () => {
    const { c } = counts();
    c.joined({ ...snapshot(["alice", "bob"], 3, 10) });
    c.presence(presence("carol", true, 11));
    c.presence(presence("bob", false, 12));
    c.guests(guests(1, 13));
    assert.deepEqual(c.online("general"), { users: 2, guests: 1 });
    assert.deepEqual(c.online("random"), { users: 0, guests: 0 });
  });
});

// Two workers announce independently: their frames reach a page in either order, and may
// reach it before the joined snapshot they are newer than (docs/protocol.md, "Presence").
const snapshot = (online, guestCount, v) => ({
  type: "joined",
  room: "general",
  online,
  guests: guestCount,
  presence_v: v,
});
const presence = (user, online, v) => ({ type: "presence", room: "general", user, online, v });
const guests = (count, v) => ({ type: "guests", room: "general", count, v });
const listed = (c) => Array.from(c.rooms.get("general").online).sort();

describe("presence frames in any order", () => {
  test("a reload across workers: online (newer) before offline (older) keeps them online", () => {
    const { c } = counts();
    c.joined(snapshot(["bob"], 0, 10));
    c.presence(presence("bob", true, 21)); // the new tab, on the other worker: at once
    c.presence(presence("bob", false, 20)); // the old tab's, held by its worker's second
    assert.deepEqual(listed(c), ["bob"]);
  });

  test("every order of one user's frames ends in the newest state", () => {
    const frames = [presence("bob", true, 11), presence("bob", false, 12), presence("bob", true, 13)];
    const orders = [
      [0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0],
    ];
    for (const order of orders) {
      const { c } = counts();
      c.joined(snapshot([], 0, 10));
      for (const i of order) c.presence(frames[i]);
      assert.deepEqual(listed(c), ["bob"], `order ${order}`);
    }
  });

  test("frames no newer than the snapshot change nothing; newer ones still apply", () => {
    const { c } = counts();
    c.joined(snapshot(["bob", "carol"], 2, 50));
    c.presence(presence("bob", false, 49)); // already in the snapshot
    c.presence(presence("dave", true, 50));
    c.presence(presence("carol", false, 51));
    assert.deepEqual(listed(c), ["bob"]);
  });

  test("a frame that came before its room's joined survives the older snapshot", () => {
    const { c } = counts();
    c.presence(presence("bob", false, 30)); // newer than the snapshot below
    c.presence(presence("carol", true, 5)); // older: the snapshot knows better
    c.guests(guests(7, 31));
    c.joined(snapshot(["bob", "dave"], 2, 20));
    assert.deepEqual(listed(c), ["dave"]);
    assert.deepEqual(c.online("general"), { users: 1, guests: 7 });
    c.presence(presence("bob", true, 25)); // between the snapshot and the frame kept
    assert.deepEqual(listed(c), ["dave"]);
  });

  test("guest counts: an older count never replaces a newer one", () => {
    const { c } = counts();
    c.joined(snapshot([], 4, 10));
    c.guests(guests(6, 30));
    c.guests(guests(5, 20)); // read earlier, by the other worker
    c.guests(guests(3, 9)); // older than the snapshot
    assert.deepEqual(c.online("general"), { users: 0, guests: 6 });
  });

  test("a new snapshot (the socket joined again) replaces what it covers", () => {
    const { c } = counts();
    c.joined(snapshot(["bob"], 1, 10));
    c.presence(presence("carol", true, 11));
    c.joined(snapshot(["erin"], 0, 40)); // after a reconnect: carol and bob have gone
    assert.deepEqual(listed(c), ["erin"]);
    c.presence(presence("carol", true, 12)); // a late copy of the old news
    assert.deepEqual(listed(c), ["erin"]);
    assert.deepEqual(c.online("general"), { users: 1, guests: 0 });
  });
});
