// Unit tests of the HTTP fallback connection (chat/static/chat/fallback.js), the very file the
// browser runs, driven with a fake clock, EventSource and fetch.
// Run with: node --test tests/js/
"use strict";

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  KEEPALIVE_MS,
  MAX_BATCH,
  SESSION_TIMEOUT_MS,
  openStream,
} from "../../chat/static/chat/fallback.js";
import { CSRF_TOKEN, SEND_URL, STREAM_URL, fakeEnv, settle } from "./fakes.js";

// One stream, with what it told its owner recorded in h.calls.
function harness() {
  const h = fakeEnv();
  h.calls = [];
  h.conn = openStream(h.env, {
    open: () => h.calls.push("open"),
    frame: (frame) => h.calls.push(frame),
    close: () => h.calls.push("close"),
  });
  h.stream = h.streams[0];
  return h;
}

// A stream whose session has begun.
function opened() {
  const h = harness();
  h.stream.open("token-1");
  return h;
}

const ping = (n) => ({ type: "ping", ref: `c${n}` });

describe("the stream", () => {
  test("is one EventSource on the stream URL; the session event opens the connection", () => {
    const h = harness();
    assert.equal(h.streams.length, 1);
    assert.equal(h.stream.url, STREAM_URL);
    assert.equal(h.conn.kind, "http");
    assert.equal(h.conn.opened, false);
    assert.equal(h.conn.send(ping(1)), false, "nothing can be sent before the session");

    h.stream.open("token-1");

    assert.equal(h.conn.opened, true);
    assert.deepEqual(h.calls, ["open"]);
  });

  test("hands each default event's JSON frame to its owner, skipping what is not JSON", () => {
    const h = opened();
    h.stream.deliver({ type: "pong", ref: "c1" });
    h.stream.emit("message", { data: "not json" });
    h.stream.deliver({ type: "typing", room: "general", user: "bob" });

    assert.deepEqual(h.calls, [
      "open",
      { type: "pong", ref: "c1" },
      { type: "typing", room: "general", user: "bob" },
    ]);
  });

  test("an error closes the EventSource, so the browser does not reconnect it by itself", () => {
    const h = opened();
    h.stream.error();

    assert.equal(h.stream.closed, true);
    assert.equal(h.conn.alive, false);
    assert.deepEqual(h.calls, ["open", "close"]);
    h.stream.error();
    h.stream.deliver({ type: "pong" });
    assert.deepEqual(h.calls, ["open", "close"], "nothing is heard from a closed stream");
  });

  test("the server's close event ends the connection, once", () => {
    const h = opened();
    h.stream.end(4008);
    h.stream.error(); // the stream ends after it, which EventSource reports as an error

    assert.equal(h.stream.closed, true);
    assert.deepEqual(h.calls, ["open", "close"]);
  });

  test("a stream refused before its session (404, 403, server down) closes without opening", () => {
    const h = harness();
    h.stream.error();

    assert.deepEqual(h.calls, ["close"]);
    assert.equal(h.conn.opened, false);
  });

  test("no session within the timeout gives the stream up", () => {
    const h = harness();
    h.clock.advance(SESSION_TIMEOUT_MS - 1);
    assert.deepEqual(h.calls, []);
    h.clock.advance(1);

    assert.deepEqual(h.calls, ["close"]);
    assert.equal(h.stream.closed, true);
  });

  test("a session without a token is no session", () => {
    const h = harness();
    h.stream.emit("session", { data: "{}" });

    assert.deepEqual(h.calls, ["close"]);
  });

  test("close() by its owner closes the stream and reports nothing back", () => {
    const h = opened();
    h.conn.close();
    h.stream.error();

    assert.equal(h.stream.closed, true);
    assert.deepEqual(h.calls, ["open"]);
    assert.equal(h.conn.send(ping(1)), false);
  });
});

describe("sending", () => {
  test("a frame goes up in a JSON POST with the session token and the CSRF token", async () => {
    const h = opened();
    assert.equal(h.conn.send(ping(1)), true);
    await settle();

    assert.equal(h.posts.length, 1);
    const [post] = h.posts;
    assert.equal(post.url, SEND_URL);
    assert.equal(post.init.method, "POST");
    assert.equal(post.init.credentials, "same-origin");
    assert.deepEqual(post.init.headers, {
      "Content-Type": "application/json",
      "X-Chat-Session": "token-1",
      "X-Chat-Batch": "1",
      "X-CSRFToken": CSRF_TOKEN,
    });
    assert.deepEqual(post.frames, [ping(1)]);
  });

  test("POSTs are numbered from 1, one after another, so the server notices a lost one", async () => {
    const h = opened();
    h.conn.send(ping(1));
    await settle();
    h.posts[0].answer(202);
    await settle();
    h.conn.send(ping(2));
    await settle();

    assert.deepEqual(
      h.posts.map((post) => post.init.headers["X-Chat-Batch"]),
      ["1", "2"],
    );
  });

  test("frames sent in one turn go up together", async () => {
    const h = opened();
    h.conn.send(ping(1));
    h.conn.send(ping(2));
    h.conn.send(ping(3));
    await settle();

    assert.deepEqual(
      h.posts.map((post) => post.frames),
      [[ping(1), ping(2), ping(3)]],
    );
  });

  test("one POST at a time: what is sent meanwhile goes up in order when it is answered", async () => {
    const h = opened();
    h.conn.send(ping(1));
    await settle();
    h.conn.send(ping(2));
    await settle();
    h.conn.send(ping(3));
    await settle();
    assert.equal(h.posts.length, 1, "a second POST waits for the first");

    h.posts[0].answer(202);
    await settle();
    assert.deepEqual(
      h.posts.map((post) => post.frames),
      [[ping(1)], [ping(2), ping(3)]],
    );
  });

  test(`at most ${MAX_BATCH} frames per POST`, async () => {
    const h = opened();
    const frames = Array.from({ length: MAX_BATCH * 2 + 1 }, (_, n) => ping(n));
    frames.forEach((frame) => h.conn.send(frame));
    await settle();
    for (let n = 0; n < 3; n += 1) {
      h.posts[n].answer(202);
      await settle();
    }

    assert.deepEqual(
      h.posts.map((post) => post.frames.length),
      [MAX_BATCH, MAX_BATCH, 1],
    );
    assert.deepEqual(
      h.posts.flatMap((post) => post.frames),
      frames,
    );
  });

  for (const [what, answer] of [
    ["a network error", (post) => post.fail()],
    ["a 500", (post) => post.answer(500)],
    ["a 502 from a proxy", (post) => post.answer(502)],
    ["a 403 (bad CSRF token or session token)", (post) => post.answer(403)],
    ["a 400", (post) => post.answer(400)],
  ]) {
    test(`${what} drops the connection: the stream is closed and the rest not sent`, async () => {
      const h = opened();
      h.conn.send(ping(1));
      await settle();
      h.conn.send(ping(2));
      answer(h.posts[0]);
      await settle();

      assert.deepEqual(h.calls, ["open", "close"]);
      assert.equal(h.stream.closed, true);
      assert.equal(h.posts.length, 1, "frames queued behind a failed POST are dropped");
      assert.equal(h.conn.send(ping(3)), false);
    });
  }

  test("an answer to a POST of a connection closed meanwhile changes nothing", async () => {
    const h = opened();
    h.conn.send(ping(1));
    await settle();
    h.conn.close();
    h.posts[0].answer(500);
    await settle();

    assert.deepEqual(h.calls, ["open"]);
  });
});

describe("keepalive", () => {
  test(`an empty POST after ${KEEPALIVE_MS / 1000} s without a POST`, async () => {
    const h = opened();
    h.clock.advance(KEEPALIVE_MS - 1);
    assert.equal(h.posts.length, 0);
    h.clock.advance(1);

    assert.deepEqual(
      h.posts.map((post) => post.frames),
      [[]],
    );
    h.posts[0].answer(202);
    await settle();
    h.clock.advance(KEEPALIVE_MS);
    assert.deepEqual(
      h.posts.map((post) => post.frames),
      [[], []],
    );
  });

  test("POSTs of frames count: no keepalive while the client keeps posting", async () => {
    const h = opened();
    for (let n = 1; n <= 5; n += 1) {
      h.clock.advance(KEEPALIVE_MS - 1000);
      h.conn.send(ping(n));
      await settle();
      h.posts.at(-1).answer(202);
      await settle();
    }

    assert.ok(h.posts.every((post) => post.frames.length === 1));
    h.clock.advance(KEEPALIVE_MS);
    assert.deepEqual(h.posts.at(-1).frames, []);
  });

  test("no keepalive while a POST is in flight; one once it is answered late", async () => {
    const h = opened();
    h.conn.send(ping(1));
    await settle();
    h.clock.advance(KEEPALIVE_MS * 2);
    assert.equal(h.posts.length, 1);

    h.posts[0].answer(202);
    await settle();
    h.clock.advance(0);
    assert.deepEqual(h.posts[1].frames, []);
  });

  test("a server with a short idle timeout gets keepalives within a third of it", () => {
    const h = harness();
    h.stream.open("token-1", 15);
    h.clock.advance(5000);

    assert.deepEqual(
      h.posts.map((post) => post.frames),
      [[]],
    );
  });

  test("a closed connection sends no keepalive", () => {
    const h = opened();
    h.conn.close();
    h.clock.advance(KEEPALIVE_MS * 3);

    assert.equal(h.posts.length, 0);
  });
});
