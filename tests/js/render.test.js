// The DOM-free parts of the message line (chat/static/chat/render.js): the initials avatar a
// live line shows must match the one the server renders (chat/avatars.py).
// Run with: node --test tests/js/
"use strict";

import { test } from "node:test";
import assert from "node:assert/strict";

import { initials, initialsHue } from "../../chat/static/chat/render.js";

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
