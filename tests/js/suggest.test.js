// Username suggestions (chat/static/chat/suggest.js) on a field faked for Node: what is asked
// for and listed, whenever the typing happened, including before the module script attached
// (a page's module runs only once it is parsed, so a quick typist can be first).
// Run with: node --test tests/js/
"use strict";

import { afterEach, beforeEach, test, mock } from "node:test";
import assert from "node:assert/strict";

import { suggestUsernames } from "../../chat/static/chat/suggest.js";

const URL = "/chat/usernames/";

function fakePage(usernamesFor) {
  const asked = [];
  globalThis.document = {
    createElement: () => ({ value: "" }),
  };
  globalThis.fetch = async (url) => {
    const prefix = new globalThis.URL(url, "http://x").searchParams.get("q");
    asked.push(prefix);
    return { ok: true, json: async () => ({ usernames: usernamesFor(prefix) }) };
  };
  const list = { options: [], replaceChildren(...options) { this.options = options; } };
  const input = new EventTarget();
  input.value = "";
  input.list = list;
  input.dataset = { suggest: URL };
  return { asked, input, list, names: () => list.options.map((option) => option.value) };
}

const PEOPLE = ["bob", "bobby", "carol"];
const starting = (prefix) => PEOPLE.filter((name) => name.startsWith(prefix));

beforeEach(() => mock.timers.enable({ apis: ["setTimeout"] }));
afterEach(() => mock.timers.reset());

async function settle() {
  mock.timers.tick(1000);
  for (let i = 0; i < 5; i += 1) await new Promise((resolve) => setImmediate(resolve));
}

function type(input, text) {
  for (const ch of text) {
    input.value += ch;
    input.dispatchEvent(new Event("input"));
  }
}

test("a name typed after the script attached is suggested for, once it pauses", async () => {
  const page = fakePage(starting);
  suggestUsernames(page.input);
  type(page.input, "bo");
  await settle();
  assert.deepEqual(page.asked, ["bo"]);
  assert.deepEqual(page.names(), ["bob", "bobby"]);
});

test("a name typed before the script attached is suggested for without another key", async () => {
  const page = fakePage(starting);
  page.input.value = "bo";
  suggestUsernames(page.input);
  await settle();
  assert.deepEqual(page.asked, ["bo"]);
  assert.deepEqual(page.names(), ["bob", "bobby"]);
});

test("an empty field asks nothing when the script attaches", async () => {
  const page = fakePage(starting);
  suggestUsernames(page.input);
  await settle();
  assert.deepEqual(page.asked, []);
});

test("a field of several names typed early suggests for the last, keeping the others", async () => {
  const page = fakePage(starting);
  page.input.dataset.several = "";
  page.input.value = "carol, bo";
  suggestUsernames(page.input);
  await settle();
  assert.deepEqual(page.asked, ["bo"]);
  assert.deepEqual(page.names(), ["carol, bob", "carol, bobby"]);
});
