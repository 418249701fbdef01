// What the page knows of people (chat/static/chat/people.js): the local time a card shows
// from someone's IANA zone, and the store that asks the server for profiles only as needed.
// Run with: node --test tests/js/
"use strict";

import { test } from "node:test";
import assert from "node:assert/strict";

import { Profiles, localTime } from "../../chat/static/chat/people.js";

const NOON_UTC = new Date("2025-01-15T12:05:00Z");

test("localTime is the time now in the person's zone, not the viewer's", () => {
  assert.equal(localTime("Asia/Tokyo", NOON_UTC, "en-GB"), "21:05");
  assert.equal(localTime("America/New_York", NOON_UTC, "en-GB"), "07:05");
  assert.equal(localTime("UTC", NOON_UTC, "en-GB"), "12:05");
});

test("localTime is empty for an unset or unknown zone", () => {
  assert.equal(localTime("", NOON_UTC), "");
  assert.equal(localTime("Mars/Olympus_Mons", NOON_UTC), "");
});

function fakeServer(profiles) {
  const asked = [];
  const fetchJson = async (url) => {
    const names = new URL(url, "http://x").searchParams.getAll("u");
    asked.push(names);
    return { profiles: Object.fromEntries(names.filter((n) => n in profiles).map((n) => [n, profiles[n]])) };
  };
  return { asked, fetchJson };
}

test("want asks only for names not known yet, and a refresh asks again", async () => {
  const server = fakeServer({ bob: { status: "on holiday", display_name: "", time_zone: "", avatar: "" } });
  const changed = [];
  const people = new Profiles({ url: "/people/profiles/", fetchJson: server.fetchJson, onChange: (n) => changed.push(n) });

  await people.want(["bob", "ghost"]);
  await people.want(["bob", "ghost"]);
  assert.deepEqual(server.asked, [["bob", "ghost"]]);
  assert.equal(people.status("bob"), "on holiday");
  assert.equal(people.get("ghost"), undefined); // no such active user
  assert.deepEqual(changed, [["bob", "ghost"]]);

  await people.refresh(["bob"]);
  assert.deepEqual(server.asked, [["bob", "ghost"], ["bob"]]);
});

test("a long list is asked in batches of 50; an anonymous page asks nothing", async () => {
  const server = fakeServer({});
  const names = Array.from({ length: 120 }, (_, i) => `user${i}`);
  await new Profiles({ url: "/people/profiles/", fetchJson: server.fetchJson }).want(names);
  assert.deepEqual(server.asked.map((batch) => batch.length), [50, 50, 20]);

  const anonymous = fakeServer({});
  await new Profiles({ url: null, fetchJson: anonymous.fetchJson }).want(["bob"]);
  assert.deepEqual(anonymous.asked, []);
});

test("a failed request is forgotten, so the next want asks again", async () => {
  let fail = true;
  const server = fakeServer({ bob: { status: "here", display_name: "", time_zone: "", avatar: "" } });
  const fetchJson = async (url) => {
    if (fail) throw new Error("503");
    return server.fetchJson(url);
  };
  const people = new Profiles({ url: "/people/profiles/", fetchJson });
  await people.want(["bob"]);
  assert.equal(people.status("bob"), "");
  fail = false;
  await people.want(["bob"]);
  assert.equal(people.status("bob"), "here");
});
