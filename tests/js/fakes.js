// The browser as transport.js and fallback.js see it, faked for Node: a clock with timers,
// WebSocket, EventSource and fetch (POSTs and polls) that record what the client does and let
// a test play the server, and the page's online/offline events. Not a test file: the tests
// import it.
"use strict";

export const SOCKET_URL = "ws://chat.test/ws/chat/";
export const STREAM_URL = "/fallback/chat/";
export const SEND_URL = "/fallback/chat/send/";
export const POLL_URL = "/fallback/chat/poll/";
export const CSRF_TOKEN = "csrf-token-1";

// Timers that run only when the test advances the clock, in the order they fall due.
export class FakeClock {
  constructor(start = 1000000) {
    this.time = start;
    this.timers = new Map();
    this.ids = 0;
    this.now = () => this.time;
    this.setTimeout = (fn, ms) => this.add(fn, ms, null);
    this.setInterval = (fn, ms) => this.add(fn, ms, ms);
    this.clearTimeout = (id) => this.timers.delete(id);
    this.clearInterval = (id) => this.timers.delete(id);
  }

  add(fn, ms, every) {
    this.ids += 1;
    this.timers.set(this.ids, { at: this.time + Math.max(0, Number(ms) || 0), fn, every });
    return this.ids;
  }

  // Move time on by `ms`, running each timer due meanwhile at its own time.
  advance(ms) {
    const end = this.time + ms;
    for (;;) {
      let due = null;
      for (const [id, timer] of this.timers) {
        if (timer.at <= end && (due === null || timer.at < due.timer.at)) due = { id, timer };
      }
      if (due === null) break;
      this.time = due.timer.at;
      if (due.timer.every) due.timer.at += due.timer.every;
      else this.timers.delete(due.id);
      due.timer.fn();
    }
    this.time = end;
  }
}

class FakeEventTarget {
  constructor() {
    this.listeners = new Map();
  }

  addEventListener(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, []);
    this.listeners.get(type).push(fn);
  }

  emit(type, event = {}) {
    for (const fn of this.listeners.get(type) || []) fn(event);
  }
}

// A WebSocket the test answers for the server: accept(), refuse(), deliver(frame), drop().
export class FakeWebSocket extends FakeEventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    this.closedByClient = false;
    FakeWebSocket.made.push(this);
  }

  send(data) {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    this.sent.push(JSON.parse(data));
  }

  // Like the browser's: the close event comes later, not from within close().
  close() {
    if (this.readyState === 3) return;
    this.closedByClient = true;
    this.readyState = 3;
    queueMicrotask(() => this.emit("close", { code: 1005 }));
  }

  accept() {
    this.readyState = 1;
    this.emit("open");
  }

  refuse() {
    this.readyState = 3;
    this.emit("close", { code: 1006 });
  }

  drop() {
    this.refuse();
  }

  deliver(frame) {
    this.emit("message", { data: JSON.stringify(frame) });
  }
}
FakeWebSocket.made = [];

// An event stream the test answers for the server: open(token), deliver(frame), end(code),
// error().
export class FakeEventSource extends FakeEventTarget {
  constructor(url) {
    super();
    this.url = url;
    this.closed = false;
    FakeEventSource.made.push(this);
  }

  close() {
    this.closed = true;
  }

  open(token = `token-${FakeEventSource.made.indexOf(this) + 1}`, idleTimeout = 60) {
    this.emit("session", { data: JSON.stringify({ token, idle_timeout: idleTimeout }) });
  }

  deliver(frame) {
    this.emit("message", { data: JSON.stringify(frame) });
  }

  end(code = 4008) {
    this.emit("close", { data: JSON.stringify({ code }) });
  }

  error() {
    this.emit("error");
  }
}
FakeEventSource.made = [];

// fetch: each POST is recorded in `posts` for the test to answer with answer(status) or
// fail(); each GET in `polls` (see FakePoll).
export function fakeFetch() {
  const posts = [];
  const polls = [];
  function fetch(url, init) {
    return new Promise((resolve, reject) => {
      if (init.method === "GET") {
        polls.push(new FakePoll(url, init, polls.length + 1, resolve, reject));
        return;
      }
      posts.push({
        url,
        init,
        frames: JSON.parse(init.body),
        answer: (status = 202) => resolve({ ok: status >= 200 && status < 300, status }),
        fail: () => reject(new TypeError("Failed to fetch")),
      });
    });
  }
  return { fetch, posts, polls };
}

// A GET of the poll URL the test answers for the server: open(token) (the opening GET), then
// deliver(first, frames), end(code), refuse(status), answer(body, status) or fail(). Aborting
// its signal rejects it as the browser's fetch does, and sets `aborted`.
export class FakePoll {
  constructor(url, init, number, resolve, reject) {
    const headers = init.headers || {};
    this.url = url;
    this.init = init;
    this.number = number;
    this.opening = !("X-Chat-Session" in headers); // opens a connection, rather than polls one
    this.session = headers["X-Chat-Session"];
    this.ack = headers["X-Chat-Ack"];
    this.aborted = false;
    this.resolve = resolve;
    this.reject = reject;
    if (init.signal) {
      init.signal.addEventListener("abort", () => {
        this.aborted = true;
        reject(new DOMException("The operation was aborted.", "AbortError"));
      });
    }
  }

  // body: an object (sent as JSON) or a string (sent as is).
  answer(body, status = 200) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    this.resolve({
      ok: status >= 200 && status < 300,
      status,
      json: () => Promise.resolve().then(() => JSON.parse(text)),
    });
  }

  open(token = `poll-token-${this.number}`, { frames = [], pollTimeout = 25 } = {}) {
    const session = { token, idle_timeout: 60, poll_timeout: pollTimeout };
    this.answer({ session, first: 1, frames, close: null });
  }

  deliver(first, frames) {
    this.answer({ first, frames, close: null });
  }

  end(code = 4008, first = 1, frames = []) {
    this.answer({ first, frames, close: code });
  }

  refuse(status = 410) {
    this.answer({ error: `refused with ${status}` }, status);
  }

  fail() {
    this.reject(new TypeError("Failed to fetch"));
  }
}

// Let promise callbacks (fetch answers, batched flushes) run.
export function settle() {
  return new Promise((resolve) => setImmediate(resolve));
}

// Everything keepOpen, openStream and openPoll take from the page, faked. `h.offline`, `h.random`
// can be changed by a test; `h.fire("online")` plays the page's events.
export function fakeEnv({ eventSource = true } = {}) {
  FakeWebSocket.made = [];
  FakeEventSource.made = [];
  const clock = new FakeClock();
  const { fetch, posts, polls } = fakeFetch();
  const listeners = new Map();
  const h = {
    clock,
    posts,
    polls,
    sockets: FakeWebSocket.made,
    streams: FakeEventSource.made,
    offline: false,
    random: 0.5,
    fire(type) {
      for (const fn of listeners.get(type) || []) fn();
    },
  };
  h.env = {
    WebSocket: FakeWebSocket,
    EventSource: eventSource ? FakeEventSource : undefined,
    fetch,
    AbortController, // Node's own, the browser's interface
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    setInterval: clock.setInterval,
    clearInterval: clock.clearInterval,
    now: clock.now,
    random: () => h.random,
    socketUrl: SOCKET_URL,
    streamUrl: STREAM_URL,
    sendUrl: SEND_URL,
    pollUrl: POLL_URL,
    csrfToken: () => CSRF_TOKEN,
    offline: () => h.offline,
    listen(type, fn) {
      if (!listeners.has(type)) listeners.set(type, []);
      listeners.get(type).push(fn);
    },
  };
  return h;
}
