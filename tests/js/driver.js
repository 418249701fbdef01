// Drives sync.js — the browser client's delivery logic, unchanged — from a Python test over
// stdin/stdout, one JSON object per line, so the fault-injection tests exercise the code the
// browser runs. Each command gets its outputs, then {"done": true}.
//
//   {"cmd": "watch", "room": R, "cursor": N|null}
//   {"cmd": "connected"} | {"cmd": "disconnected"}
//   {"cmd": "frame", "frame": {...}}          a frame from the server
//   {"cmd": "tick", "now": MS}                advance the clock and run timers
//   {"cmd": "submit", "room": R, "body": B, "client_id": C}
//   {"cmd": "state"}                          → {"state": {"rooms": {R: {...}}, "outbox": [...]}}
//
// Outputs: {"send": frame} for every frame the client writes to its socket.
"use strict";

import readline from "node:readline";
import { ChatClient } from "../../chat/static/chat/sync.js";

let clock = 0;
const out = (obj) => process.stdout.write(JSON.stringify(obj) + "\n");
// The view keeps each room's messages in seq order, as room.js does, and counts how often
// each id was shown, so a test can see duplicates.
const shown = new Map();

const client = new ChatClient({
  send(frame) {
    out({ send: frame });
    return true;
  },
  now: () => clock,
  view: {
    message(room, msg) {
      if (!shown.has(room)) shown.set(room, []);
      const list = shown.get(room);
      let at = list.length;
      while (at > 0 && list[at - 1].seq > msg.seq) at -= 1;
      list.splice(at, 0, { id: msg.id, seq: msg.seq });
    },
  },
});

const commands = {
  watch: (c) => client.watch(c.room, c.cursor === undefined ? null : c.cursor),
  connected: () => client.connected(),
  disconnected: () => client.disconnected(),
  frame: (c) => client.receive(c.frame),
  tick(c) {
    clock = c.now;
    const verdict = client.tick();
    if (verdict) out({ verdict });
  },
  submit: (c) => client.submit(c.room, c.body, c.client_id),
  state() {
    const rooms = {};
    for (const [room, state] of client.rooms) {
      rooms[room] = {
        cursor: state.cursor,
        syncing: state.syncing,
        seqs: (shown.get(room) || []).map((m) => m.seq),
        ids: (shown.get(room) || []).map((m) => m.id),
      };
    }
    out({ state: { rooms, outbox: Array.from(client.outbox.values()) } });
  },
};

readline.createInterface({ input: process.stdin }).on("line", (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  commands[command.cmd](command);
  out({ done: true });
});
