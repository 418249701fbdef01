// Unit tests of the HTTP fallback connections (chat/static/chat/fallback.js): the event stream,
// the long-polls and the POSTs both share. The very file the browser runs, driven with a fake
// clock, EventSource and fetch.
// Run with: node --test tests/js/
"use strict";

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import {
  KEEPALIVE_MS,
  MAX_BATCH,
  POLL_GRACE_MS,
  SESSION_TIMEOUT_MS,
  openPoll,
  openStream,
} from "../../chat/static/chat/fallback.js";
import { CSRF_TOKEN, POLL_URL, SEND_URL, STREAM_URL, fakeEnv, settle } from "./fakes.js";

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

// A poll connection, with what it told its owner recorded in h.calls; h.poll() is its latest
// GET.
function pollHarness() {
  const h = fakeEnv();
  h.calls = [];
  h.conn = openPoll(h.env, {
    open: () => h.calls.push("open"),
    frame: (frame) => h.calls.push(frame),
    close: () => h.calls.push("close"),
  });
  h.poll = () => h.polls.at(-1);
  return h;
}

// A poll connection whose session has begun, its first poll in flight.
async function pollOpened(options) {
  const h = pollHarness();
  h.poll().open("token-1", options);
  await settle();
  return h;
}

const ping = (n) => ({ type: "ping", ref: `c${n}` });
const pong = (n) => ({ type: "pong", ref: `c${n}` });

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

describe("polling", () => {
  test("a GET of the poll URL without a session opens; its answer opens the connection", async () => {
    const h = pollHarness();
    assert.equal(h.polls.length, 1);
    const [opening] = h.polls;
    assert.equal(opening.url, POLL_URL);
    assert.equal(opening.init.method, "GET");
    assert.equal(opening.init.credentials, "same-origin");
    assert.equal(opening.init.cache, "no-store");
    assert.equal(opening.opening, true, "no X-Chat-Session: this GET opens a connection");
    assert.equal(h.conn.kind, "http");
    assert.equal(h.conn.opened, false);
    assert.equal(h.conn.send(ping(1)), false, "nothing can be sent before the session");

    opening.open("token-1", { frames: [pong(1), pong(2)] });
    await settle();

    assert.equal(h.conn.opened, true);
    assert.deepEqual(h.calls, ["open", pong(1), pong(2)]);
    assert.equal(h.polls.length, 2, "then it polls");
    assert.equal(h.poll().init.headers["X-Chat-Session"], "token-1");
    assert.equal(h.poll().ack, "2");
  });

  test("acks 0 until a frame arrives, then the number of the last frame received", async () => {
    const h = await pollOpened();
    assert.equal(h.poll().ack, "0");
    h.poll().deliver(1, [pong(1)]);
    await settle();
    assert.equal(h.poll().ack, "1");
    h.poll().deliver(2, []); // poll_timeout passed with nothing new
    await settle();
    assert.equal(h.poll().ack, "1");
    h.poll().deliver(2, [pong(2), pong(3), pong(4)]);
    await settle();

    assert.equal(h.poll().ack, "4");
    assert.deepEqual(
      h.polls.map((poll) => poll.ack),
      [undefined, "0", "1", "1", "4"],
    );
  });

  test("one poll at a time: the next goes out only once the last is answered", async () => {
    const h = await pollOpened();
    h.clock.advance(30000);
    h.conn.send(ping(1));
    await settle();
    assert.equal(h.polls.length, 2);
    h.poll().deliver(1, [pong(1)]);
    await settle();
    assert.equal(h.polls.length, 3);
  });

  test("frames arrive in order, across polls", async () => {
    const h = await pollOpened();
    h.poll().deliver(1, [pong(1), pong(2)]);
    await settle();
    h.poll().deliver(3, [pong(3)]);
    await settle();

    assert.deepEqual(h.calls, ["open", pong(1), pong(2), pong(3)]);
  });

  test("an answer repeating frames already received delivers only the new ones, once", async () => {
    const h = await pollOpened({ frames: [pong(1)] });
    h.poll().deliver(1, [pong(1), pong(2)]); // the answer to a lost poll, again
    await settle();
    h.poll().deliver(1, [pong(1), pong(2)]);
    await settle();
    h.poll().deliver(2, [pong(2), pong(3)]);
    await settle();

    assert.deepEqual(h.calls, ["open", pong(1), pong(2), pong(3)]);
    assert.equal(h.poll().ack, "3");
  });

  test("an answer that skips frames drops the connection: they are lost", async () => {
    const h = await pollOpened();
    h.poll().deliver(2, [pong(2)]);
    await settle();

    assert.deepEqual(h.calls, ["open", "close"]);
    assert.equal(h.polls.length, 2, "no poll after it");
  });

  test("a close code in an answer ends the connection after that answer's frames", async () => {
    const h = await pollOpened();
    h.poll().end(4008, 1, [{ type: "error", code: "limit_reached" }]);
    await settle();

    assert.deepEqual(h.calls, ["open", { type: "error", code: "limit_reached" }, "close"]);
    assert.equal(h.conn.alive, false);
    assert.equal(h.polls.length, 2, "no poll after it");
    assert.equal(h.conn.send(ping(1)), false);
    assert.equal(h.posts.length, 0, "the server ended it: no goodbye");
  });

  test("an opening answer with a close code opens, delivers, then closes", async () => {
    const h = pollHarness();
    h.poll().answer({
      session: { token: "t", idle_timeout: 60, poll_timeout: 25 },
      first: 1,
      frames: [pong(1)],
      close: 4008,
    });
    await settle();

    assert.deepEqual(h.calls, ["open", pong(1), "close"]);
    assert.equal(h.polls.length, 1);
  });

  for (const [what, answer] of [
    ["a 410 (the connection has ended)", (poll) => poll.refuse(410)],
    ["a 403 (a forged token)", (poll) => poll.refuse(403)],
    ["a 400 (a bad ack)", (poll) => poll.refuse(400)],
    ["a 502 from a proxy", (poll) => poll.answer("<html>Bad Gateway</html>", 502)],
    ["a network error", (poll) => poll.fail()],
    ["an answer that is not JSON", (poll) => poll.answer("<html>ok</html>")],
    ["an answer without frames", (poll) => poll.answer({ first: 1 })],
  ]) {
    test(`${what} to a poll drops the connection, once, and polls no more`, async () => {
      const h = await pollOpened();
      answer(h.poll());
      await settle();

      assert.deepEqual(h.calls, ["open", "close"]);
      assert.equal(h.conn.alive, false);
      assert.equal(h.polls.length, 2);
      assert.equal(h.conn.send(ping(1)), false);
    });
  }

  test("an error status drops the connection whatever its body holds", async () => {
    const h = await pollOpened();
    h.poll().answer({ first: 1, frames: [pong(1)], close: null }, 410);
    await settle();

    assert.deepEqual(h.calls, ["open", "close"]);
  });

  for (const [what, answer] of [
    ["a 403 (no session cookie's user may, or a foreign Origin)", (poll) => poll.refuse(403)],
    ["a 404 (a server without long-polling)", (poll) => poll.refuse(404)],
    ["a network error (the server is down)", (poll) => poll.fail()],
    ["an answer without a session", (poll) => poll.deliver(1, [])],
  ]) {
    test(`${what} to the opening GET closes without opening`, async () => {
      const h = pollHarness();
      answer(h.poll());
      await settle();

      assert.deepEqual(h.calls, ["close"]);
      assert.equal(h.conn.opened, false);
      assert.equal(h.polls.length, 1);
    });
  }

  test("no session within the timeout gives the connection up, aborting its GET", async () => {
    const h = pollHarness();
    h.clock.advance(SESSION_TIMEOUT_MS - 1);
    assert.deepEqual(h.calls, []);
    h.clock.advance(1);
    await settle();

    assert.deepEqual(h.calls, ["close"]);
    assert.equal(h.polls[0].aborted, true);
    h.polls[0].open("late");
    await settle();
    assert.deepEqual(h.calls, ["close"], "a session that comes too late opens nothing");
  });

  test("a poll unanswered for poll_timeout + 10 s is lost: the connection drops", async () => {
    const h = await pollOpened({ pollTimeout: 5 });
    h.clock.advance(5000 + POLL_GRACE_MS - 1);
    await settle();
    assert.deepEqual(h.calls, ["open"]);
    h.clock.advance(1);
    await settle();

    assert.deepEqual(h.calls, ["open", "close"]);
    assert.equal(h.polls[1].aborted, true);
    assert.equal(h.polls.length, 2);
  });

  test("each poll has its own timeout: an answered one does not count against the next", async () => {
    const h = await pollOpened({ pollTimeout: 5 });
    h.clock.advance(10000);
    h.poll().deliver(1, []);
    await settle();
    h.clock.advance(10000);
    await settle();

    assert.deepEqual(h.calls, ["open"]);
    assert.equal(h.polls.length, 3);
  });

  test("no keepalive POSTs: the polls are the connection's signs of life", async () => {
    const h = await pollOpened();
    for (let n = 1; n <= 6; n += 1) {
      h.clock.advance(KEEPALIVE_MS / 2);
      h.poll().deliver(n, []);
      await settle();
    }
    h.clock.advance(KEEPALIVE_MS * 3);
    await settle();

    assert.equal(h.posts.length, 0);
  });

  test("close() aborts the poll in flight and POSTs X-Chat-Close: the server ends it now", async () => {
    const h = await pollOpened();
    h.conn.close();
    await settle();

    assert.equal(h.polls[1].aborted, true);
    assert.equal(h.polls.length, 2, "no poll after it");
    assert.equal(h.posts.length, 1);
    const [post] = h.posts;
    assert.equal(post.url, SEND_URL);
    assert.deepEqual(post.init.headers, {
      "Content-Type": "application/json",
      "X-Chat-Session": "token-1",
      "X-Chat-Batch": "1",
      "X-CSRFToken": CSRF_TOKEN,
      "X-Chat-Close": "1",
    });
    assert.deepEqual(post.frames, []);
    assert.deepEqual(h.calls, ["open"], "the owner closed it: no on.close");
    assert.equal(h.conn.send(ping(1)), false);
  });

  test("close() POSTs what is queued with X-Chat-Close, numbered after the last POST", async () => {
    const h = await pollOpened();
    h.conn.send(ping(1));
    await settle();
    h.posts[0].answer(202);
    await settle();
    h.conn.send(ping(2));
    h.conn.close(); // in the same turn: ping 2 has not gone up yet
    await settle();

    assert.deepEqual(
      h.posts.map((post) => [post.init.headers["X-Chat-Batch"], post.frames]),
      [
        ["1", [ping(1)]],
        ["2", [ping(2)]],
      ],
    );
    assert.equal(h.posts[1].init.headers["X-Chat-Close"], "1");
  });

  test("close() with a POST in flight says goodbye once it is answered: one at a time", async () => {
    const h = await pollOpened();
    h.conn.send(ping(1));
    await settle();
    h.conn.send(ping(2));
    h.conn.close();
    await settle();
    assert.equal(h.posts.length, 1, "one POST in flight at a time, even when closing");

    h.posts[0].answer(202);
    await settle();
    assert.deepEqual(
      h.posts.map((post) => [post.init.headers["X-Chat-Batch"], post.frames]),
      [
        ["1", [ping(1)]],
        ["2", [ping(2)]],
      ],
    );
    assert.equal(h.posts[1].init.headers["X-Chat-Close"], "1");
    h.posts[1].fail(); // a goodbye's fate is no one's concern
    await settle();
    assert.deepEqual(h.calls, ["open"]);
  });

  test("close() before the session aborts the opening GET and POSTs nothing", async () => {
    const h = pollHarness();
    h.conn.close();
    await settle();

    assert.equal(h.polls[0].aborted, true);
    assert.equal(h.posts.length, 0);
    assert.deepEqual(h.calls, []);
  });

  test("a connection dropped by its server (or a failed POST) says no goodbye", async () => {
    const h = await pollOpened();
    h.poll().refuse(410);
    await settle();
    h.conn.close();
    await settle();

    assert.equal(h.posts.length, 0);
  });

  test("an owner that closes it on a frame hears no more frames, and no poll follows", async () => {
    const h = fakeEnv();
    const seen = [];
    const conn = openPoll(h.env, {
      open: () => seen.push("open"),
      frame: (frame) => {
        seen.push(frame);
        conn.close();
      },
      close: () => seen.push("close"),
    });
    h.polls[0].open("token-1", { frames: [pong(1), pong(2)] });
    await settle();

    assert.deepEqual(seen, ["open", pong(1)]);
    assert.equal(h.polls.length, 1);
    assert.equal(h.posts.length, 1, "its goodbye");
  });
});

// The two ways down, open, with h.downClosed() saying whether the way down was given up.
const OPENED = {
  async stream() {
    const h = opened();
    h.downClosed = () => h.stream.closed;
    return h;
  },
  async poll() {
    const h = await pollOpened();
    h.downClosed = () => h.polls.at(-1).aborted;
    return h;
  },
};

for (const [kind, connected] of Object.entries(OPENED)) describe(`sending, on the ${kind}`, () => {
  test("a frame goes up in a JSON POST with the session token and the CSRF token", async () => {
    const h = await connected();
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
    const h = await connected();
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
    const h = await connected();
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
    const h = await connected();
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
    const h = await connected();
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
    test(`${what} drops the connection: the way down is closed and the rest not sent`, async () => {
      const h = await connected();
      h.conn.send(ping(1));
      await settle();
      h.conn.send(ping(2));
      answer(h.posts[0]);
      await settle();

      assert.deepEqual(h.calls, ["open", "close"]);
      assert.equal(h.downClosed(), true);
      assert.equal(h.posts.length, 1, "frames queued behind a failed POST are dropped");
      assert.equal(h.conn.send(ping(3)), false);
    });
  }

  test("an answer to a POST of a connection closed meanwhile changes nothing", async () => {
    const h = await connected();
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
