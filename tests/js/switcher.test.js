// The room switcher's ranking (chat/static/chat/switcher.js).
// Run with: node --test tests/js/
"use strict";

import { test } from "node:test";
import assert from "node:assert/strict";

import { matchRank, rankRooms } from "../../chat/static/chat/switcher.js";

const room = (name, more = {}) => ({ name, unread: 0, muted: false, current: false, ...more });
const names = (rooms) => rooms.map((r) => r.name);

test("matchRank: the name's start, then a word's start, then inside a word, else null", () => {
  assert.equal(matchRank("general", "gen"), 0);
  assert.equal(matchRank("dev general", "gen"), 1);
  assert.equal(matchRank("dev-general", "gen"), 1);
  assert.equal(matchRank("regen", "gen"), 2);
  assert.equal(matchRank("regen general", "gen"), 1); // a later word start beats the first hit
  assert.equal(matchRank("random", "gen"), null);
});

test("a query keeps the matching rooms, start before word start before substring, case-insensitive", () => {
  const rooms = [room("Regenerate"), room("Dev General"), room("Random"), room("General")];
  assert.deepEqual(names(rankRooms(rooms, " GEN ")), ["General", "Dev General", "Regenerate"]);
  assert.deepEqual(rankRooms(rooms, "zzz"), []);
});

test("without a query, unread rooms come first (not muted ones), the room on screen last", () => {
  const rooms = [
    room("Here", { current: true }),
    room("Quiet"),
    room("Muted", { unread: 5, muted: true }),
    room("Busy", { unread: 2 }),
    room("Also busy", { unread: 1 }),
  ];
  assert.deepEqual(names(rankRooms(rooms, "")), ["Busy", "Also busy", "Quiet", "Muted", "Here"]);
});
