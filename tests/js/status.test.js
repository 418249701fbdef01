// Unit tests of the connection status line (chat/static/chat/status.js): what the page says
// of its connection, and of the server's broadcasts (`live` frames). Run with:
// node --test tests/js/
"use strict";

import { test } from "node:test";
import assert from "node:assert/strict";

import { StatusLine } from "../../chat/static/chat/status.js";

function line() {
  const el = { textContent: "Offline", dataset: { state: "offline" } };
  return { el, status: new StatusLine(el) };
}

const shown = (el) => [el.textContent, el.dataset.state, el.dataset.transport];

test("connected says so, with the HTTP fallback named", () => {
  const { el, status } = line();
  status.connection("connecting");
  assert.deepEqual(shown(el), ["Connecting…", "connecting", undefined]);
  status.connection("connected", "websocket");
  assert.deepEqual(shown(el), ["Connected", "connected", "websocket"]);
  status.connection("connected", "http");
  assert.deepEqual(shown(el), ["Connected (HTTP)", "connected", "http"]);
});

test("a server without live broadcasts says they are delayed until it says otherwise", () => {
  const { el, status } = line();
  status.connection("connected", "websocket");
  status.setLive(false);
  assert.deepEqual(shown(el), ["Live updates delayed", "delayed", "websocket"]);
  status.setLive(true);
  assert.deepEqual(shown(el), ["Connected", "connected", "websocket"]);
});

test("a new connection is live until told otherwise; a lost one says it is lost", () => {
  const { el, status } = line();
  status.connection("connected", "websocket");
  status.setLive(false);
  status.connection("reconnecting");
  assert.deepEqual(shown(el), ["Reconnecting…", "reconnecting", undefined]);
  status.connection("connected", "http"); // another worker, maybe: it says if it is not live
  assert.deepEqual(shown(el), ["Connected (HTTP)", "connected", "http"]);
});

test("a new transport is a new connection: live until its server says otherwise", () => {
  const { el, status } = line();
  status.connection("connected", "http");
  status.setLive(false);
  status.connection("connected", "websocket"); // the background probe's socket took over
  assert.deepEqual(shown(el), ["Connected", "connected", "websocket"]);
  status.setLive(false); // its pong, or its `live` frame, says the outage goes on
  assert.deepEqual(shown(el), ["Live updates delayed", "delayed", "websocket"]);
});
