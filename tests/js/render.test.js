// The DOM-free parts of the message line (chat/static/chat/render.js): the initials avatar a
// live line shows must match the one the server renders (chat/avatars.py).
// Run with: node --test tests/js/
"use strict";

import { test } from "node:test";
import assert from "node:assert/strict";

import { formatSize } from "../../chat/static/chat/files.js";
import { formatFullDate, formatTime, initials, initialsHue, whoReacted } from "../../chat/static/chat/render.js";

test("whoReacted says what the page says (tests/unit/test_reactions.py)", () => {
  assert.equal(whoReacted(["alice"], 1), "alice");
  assert.equal(whoReacted(["alice", "bob"], 2), "alice and bob");
  assert.equal(whoReacted(["alice", "bob", "carol"], 3), "alice, bob and carol");
  assert.equal(whoReacted(["alice", "bob"], 3), "alice, bob and 1 other");
  assert.equal(whoReacted(["alice", "bob"], 7), "alice, bob and 5 others");
});

test("initialsHue gives the server's colours (tests/unit/test_avatars.py HUES)", () => {
  const hues = { alice: 0, bob: 1, "émile": 2, "たなか": 0, user1: 10, "😀x": 4 };
  for (const [name, hue] of Object.entries(hues)) assert.equal(initialsHue(name), hue, name);
});

test("initials are the name's first character, uppercased, whole even outside the BMP", () => {
  assert.equal(initials("alice"), "A");
  assert.equal(initials("  émile"), "É");
  assert.equal(initials("😀x"), "😀");
  assert.equal(initials(""), "?");
});

test("a message's time is the viewer's own zone's, with the full date for its title", () => {
  const previous = process.env.TZ;
  // Node reads TZ when a date is formatted; the page's zone is the browser's, as here.
  process.env.TZ = "Asia/Tokyo";
  try {
    assert.equal(formatTime("2025-01-15T12:05:00+00:00", "en-GB"), "21:05");
    const full = formatFullDate("2025-01-15T12:05:00+00:00", "en-GB"); // punctuation: ICU's
    for (const part of ["Wednesday", "15 January 2025", "21:05"]) assert.ok(full.includes(part), full);
    assert.equal(formatFullDate("not a date"), "");
  } finally {
    if (previous === undefined) delete process.env.TZ;
    else process.env.TZ = previous;
  }
});

test("a file's size reads as the server's pages show it (Django's filesizeformat)", () => {
  assert.equal(formatSize(1), "1\u00a0byte");
  assert.equal(formatSize(1023), "1023\u00a0bytes");
  assert.equal(formatSize(1024), "1.0\u00a0KB");
  assert.equal(formatSize(48213), "47.1\u00a0KB");
  assert.equal(formatSize(10 * 1024 * 1024), "10.0\u00a0MB");
});
