// The composer's drafts, counter and paste check (chat/static/chat/drafts.js).
// Run with: node --test tests/js/
"use strict";

import { test } from "node:test";
import assert from "node:assert/strict";

import { Drafts, countText, draftKey, pasteOverflow } from "../../chat/static/chat/drafts.js";

class MemoryStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(key) {
    return this.items.has(key) ? this.items.get(key) : null;
  }
  setItem(key, value) {
    this.items.set(key, String(value));
  }
  removeItem(key) {
    this.items.delete(key);
  }
}

test("countText shows nothing up to 90 % of the limit, then the count and the limit", () => {
  assert.equal(countText(0, 4000), "");
  assert.equal(countText(3600, 4000), "");
  assert.equal(countText(3601, 4000), "3,601 / 4,000");
  assert.equal(countText(3812, 4000), "3,812 / 4,000");
  assert.equal(countText(4000, 4000), "4,000 / 4,000");
  assert.equal(countText(95, 100), "95 / 100");
  assert.equal(countText(5, 0), ""); // no limit known: no counter
});

test("pasteOverflow says how much of a paste does not fit, counting a CRLF once", () => {
  assert.equal(pasteOverflow({ length: 0, selected: 0, pasted: "abc", max: 10 }), 0);
  assert.equal(pasteOverflow({ length: 8, selected: 0, pasted: "abc", max: 10 }), 1);
  assert.equal(pasteOverflow({ length: 8, selected: 2, pasted: "abc", max: 10 }), 0); // replaces the selection
  assert.equal(pasteOverflow({ length: 0, selected: 0, pasted: "a\r\nb\rc\n", max: 6 }), 0);
  assert.equal(pasteOverflow({ length: 0, selected: 0, pasted: "x".repeat(5000), max: 4000 }), 1000);
});

test("drafts are kept per user and room, and an empty text removes one", () => {
  const storage = new MemoryStorage();
  const alice = new Drafts({ user: "alice", storage });
  const bob = new Drafts({ user: "bob", storage });
  alice.set("general", "half a thought");
  alice.set("random", "another");
  assert.equal(alice.get("general"), "half a thought");
  assert.equal(alice.get("random"), "another");
  assert.equal(bob.get("general"), "");
  assert.equal(storage.getItem(draftKey("alice", "general")), "half a thought");
  alice.set("general", "");
  assert.equal(alice.get("general"), "");
  assert.equal(storage.items.has(draftKey("alice", "general")), false);
});

test("no user, no storage or a failing storage keep nothing and throw nothing", () => {
  const storage = new MemoryStorage();
  new Drafts({ user: null, storage }).set("general", "x");
  assert.equal(storage.items.size, 0);
  assert.equal(new Drafts({ user: "alice", storage: null }).get("general"), "");
  const broken = {
    getItem() {
      throw new Error("denied");
    },
    setItem() {
      throw new Error("quota");
    },
    removeItem() {
      throw new Error("denied");
    },
  };
  const drafts = new Drafts({ user: "alice", storage: broken });
  drafts.set("general", "x");
  drafts.set("general", "");
  assert.equal(drafts.get("general"), "");
});
