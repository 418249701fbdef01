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
    c.joined({ type: "joined", room: "general", online: ["alice", "bob"], guests: 3 });
    c.presence({ type: "presence", room: "general", user: "carol", online: true });
    c.presence({ type: "presence", room: "general", user: "bob", online: false });
    c.guests({ type: "guests", room: "general", count: 1 });
    assert.deepEqual(c.online("general"), { users: 2, guests: 1 });
    assert.deepEqual(c.online("random"), { users: 0, guests: 0 });
  });
});
