// The reference server for `make bench`: Socket.IO's chat example, adapted to rooms.
//
// The example (socket.io.github.io/chat) re-emits every "chat message" to everyone. Here a
// socket joins rooms like a chatsite socket does, and a message goes to every socket in its
// room, the sender's included (io.to, not socket.to), the way chatsite broadcasts. The server
// stamps each message with an id, a per-room seq and a time, so the frame a listener gets is
// about the size of chatsite's `message` frame, and answers the sender's ack callback.
//
// Usage: node socketio_server.js [--port PORT]   (or PORT=...); prints "listening" when ready.
"use strict";

const http = require("node:http");
const { Server } = require("socket.io");

function portFromArgs() {
  const i = process.argv.indexOf("--port");
  const raw = i >= 0 ? process.argv[i + 1] : process.env.PORT;
  const port = Number.parseInt(raw ?? "", 10);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    console.error("usage: node socketio_server.js --port PORT");
    process.exit(2);
  }
  return port;
}

const port = portFromArgs();
const httpServer = http.createServer((req, res) => {
  res.writeHead(404).end();
});
const io = new Server(httpServer, { serveClient: false });

let nextId = 1;
const lastSeq = new Map(); // room → last seq

io.on("connection", (socket) => {
  socket.on("join", (room, ack) => {
    if (typeof room !== "string" || !room) return;
    socket.join(room);
    if (typeof ack === "function") ack({ room, last_seq: lastSeq.get(room) ?? 0 });
  });

  socket.on("chat message", (msg, ack) => {
    if (!msg || typeof msg.room !== "string" || typeof msg.body !== "string") return;
    if (!socket.rooms.has(msg.room)) return;
    const seq = (lastSeq.get(msg.room) ?? 0) + 1;
    lastSeq.set(msg.room, seq);
    const message = {
      id: nextId++,
      seq,
      room: msg.room,
      author: socket.id,
      body: msg.body,
      created: new Date().toISOString(),
      client_id: msg.id ?? null,
    };
    if (typeof ack === "function") ack({ room: msg.room, client_id: message.client_id, id: message.id, seq });
    io.to(msg.room).emit("chat message", message);
  });
});

httpServer.listen({ port, host: "127.0.0.1", backlog: 4096 }, () => {
  console.log("listening");
});

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
