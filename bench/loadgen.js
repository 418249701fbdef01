// The one load generator of `make bench`: the same workloads against chatsite (raw `ws`,
// the protocol in docs/protocol.md) and the reference Socket.IO server (socket.io-client,
// websocket transport), and, with `--transport http`, over HTTP: chatsite's fallback (an
// event stream and numbered POSTs) and Socket.IO forced to long-polling, for every client,
// the sender's included. bench/run.py starts it; it can also be run by hand.
//
//   node loadgen.js --target chatsite|socketio --url http://127.0.0.1:PORT [--transport ws|http]
//                   [options] WORKLOAD
//
// Workloads:
//   broadcast --listeners N (--duration S | --messages M)
//       N listeners and 1 sender in one room, one message in flight: the sender sends the
//       next message when every listener has the previous one (or after --timeout, counting
//       the listeners that lack it as dropped). Latency of a delivery = arrival − send.
//   acks --senders K --duration S [--own-rooms PREFIX]
//       K senders in one room, each in its own closed loop: send, wait for its ack, send.
//       With --own-rooms, sender i is alone in room PREFIX000 + i (chatsite: must exist).
//   idle --sockets S
//       Open S sockets, each joined to the room; prints {"event":"baseline"} after a short
//       warm-up and waits for "go" on stdin, then {"event":"ready"} and waits for "close".
//
//   With --procs P (1), the broadcast's listeners are spread over P listener processes
//   (this script again, `--role listeners`), so one generator process's CPU does not set the
//   pace; the sender stays in this process. Over WebSockets the listeners are raw clients
//   (`--client raw`, the default): a TCP socket that parses frames and finds the message's
//   client_id with one buffer search, the same cheap code for every server; `--client lib`
//   uses `ws` / socket.io-client instead; `--client native` runs the same raw client in C
//   (listeners.c, built by bench/run.py; `--native PATH`, default build/listeners), at
//   about 0.6 times the JavaScript one's CPU per delivery; bench/run.py uses it by default.
//
// Targets: chatsite, socketio (socketio_server.js), websockets (websockets_server.py, which
// speaks chatsite's join/send/message/ack frames without sessions).
//
// Options: --room SLUG (general), --cookies FILE (JSON list of chatsite session ids; senders
// use them, listeners are anonymous), --server-pid PID[,PID...] and --clk-tck HZ (server
// CPU, summed over a server's workers, is read from /proc/PID/stat at the edges of the
// measured window), --services NAME,... (processes
// whose CPU is counted apart: redis-server,postgres), --warmup S (2), --timeout S (5),
// --batch B (connections opened at once while ramping, 100), --deadline S (hard time limit).
//
// stdout carries JSON lines only; the last one is {"event":"result", ...}. Logs go to stderr.
"use strict";

const fs = require("node:fs");
const http = require("node:http");
const readline = require("node:readline");
const { performance } = require("node:perf_hooks");
const WebSocket = require("ws");
const { io: ioClient } = require("socket.io-client");

// Options ----------------------------------------------------------------------------------

function parseArgs(argv) {
  const opts = {
    target: null,
    transport: "ws",
    url: null,
    workload: null,
    room: "general",
    cookies: null,
    ownRooms: null,
    services: null,
    serverPid: null,
    clkTck: 100,
    listeners: 100,
    senders: 100,
    sockets: 5000,
    duration: 8,
    messages: 0,
    warmup: 2,
    timeout: 5,
    batch: 100,
    connectTimeout: 15,
    deadline: 0,
    bodySize: 48,
    procs: 1,
    client: "raw",
    native: require("node:path").join(__dirname, "build", "listeners"),
    role: "main",
    prefix: null,
  };
  const numeric = {
    "--clk-tck": "clkTck",
    "--listeners": "listeners",
    "--senders": "senders",
    "--sockets": "sockets",
    "--duration": "duration",
    "--messages": "messages",
    "--warmup": "warmup",
    "--timeout": "timeout",
    "--batch": "batch",
    "--connect-timeout": "connectTimeout",
    "--deadline": "deadline",
    "--body-size": "bodySize",
    "--procs": "procs",
  };
  const strings = {
    "--target": "target",
    "--transport": "transport",
    "--url": "url",
    "--room": "room",
    "--cookies": "cookies",
    "--own-rooms": "ownRooms",
    "--services": "services",
    "--server-pid": "serverPid",
    "--client": "client",
    "--native": "native",
    "--role": "role",
    "--prefix": "prefix",
  };
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i];
    if (arg in numeric) {
      const value = Number(argv[++i]);
      if (!Number.isFinite(value) || value < 0) usage(`${arg} needs a number`);
      opts[numeric[arg]] = value;
    } else if (arg in strings) {
      if (argv[i + 1] === undefined) usage(`${arg} needs a value`);
      opts[strings[arg]] = argv[++i];
    } else if (["broadcast", "acks", "idle"].includes(arg)) {
      opts.workload = arg;
    } else {
      usage(`unknown argument ${arg}`);
    }
  }
  if (!["chatsite", "socketio", "websockets"].includes(opts.target)) {
    usage("--target chatsite|socketio|websockets");
  }
  if (!["native", "raw", "lib"].includes(opts.client)) usage("--client native|raw|lib");
  if (opts.client === "native" && !fs.existsSync(opts.native)) {
    usage(`--client native needs ${opts.native} (bench/run.py builds it from listeners.c)`);
  }
  if (opts.serverPid !== null && !/^\d+(,\d+)*$/.test(opts.serverPid)) {
    usage("--server-pid PID[,PID...] (a server's process, or its workers')");
  }
  if (!Number.isInteger(opts.procs) || opts.procs < 1) usage("--procs needs a whole number >= 1");
  if (!["ws", "http"].includes(opts.transport)) usage("--transport ws|http");
  if (!opts.url || !/^http:\/\/127\.0\.0\.1:\d+$/.test(opts.url)) {
    usage("--url http://127.0.0.1:PORT (the harness only talks to this machine)");
  }
  if (!opts.workload) usage("a workload: broadcast, acks or idle");
  if (!opts.deadline) {
    // Ramping, warm-up and the window, generously; a stuck run still ends.
    const count = opts.workload === "idle" ? opts.sockets : opts.listeners + opts.senders;
    opts.deadline = 120 + opts.warmup + opts.duration + count / 50;
  }
  return opts;
}

function usage(message) {
  console.error(`loadgen: ${message}`);
  console.error(
    "usage: node loadgen.js --target chatsite|socketio --url http://127.0.0.1:PORT " +
      "[--transport ws|http] [--cookies FILE] [--server-pid PID[,PID...]] broadcast|acks|idle [--listeners N] [--senders K] " +
      "[--sockets S] [--duration S | --messages M]",
  );
  process.exit(2);
}

const opts = parseArgs(process.argv);
const log = (...args) =>
  console.error(`[loadgen ${opts.target} ${opts.workload}${opts.role === "main" ? "" : ` ${process.pid}`}]`, ...args);
const emit = (obj) => process.stdout.write(`${JSON.stringify(obj)}\n`);

const deadlineTimer = setTimeout(() => {
  emit({ event: "error", error: `deadline of ${opts.deadline} s passed` });
  process.exit(3);
}, opts.deadline * 1000);

// Measurement helpers ----------------------------------------------------------------------

function pidCpuSeconds(pid) {
  // Fields after "(comm)": state is field 3, utime 14, stime 15 (man 5 proc).
  const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(rest[11]) + Number(rest[12])) / opts.clkTck;
}

/** CPU seconds of each server process (--server-pid PID[,PID…]: a server's workers). */
function serverCpuSeconds() {
  return opts.serverPid ? opts.serverPid.split(",").map(pidCpuSeconds) : null;
}

/** How many of the port's connections each server process (each worker) holds: the split the
 * kernel made of the sockets across a server's workers. */
function serverSockets() {
  if (!opts.serverPid) return null;
  const port = Number(new URL(opts.url).port);
  const established = new Set(); // socket inodes of connections to the port
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text;
    try {
      text = fs.readFileSync(file, "utf8");
    } catch {
      continue; // no IPv6 here
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st ... inode (man 5 proc); state 01 is ESTABLISHED.
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === "01" && parseInt(f[1].split(":")[1], 16) === port) {
        established.add(f[9]);
      }
    }
  }
  return opts.serverPid.split(",").map((pid) => {
    let held = 0;
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      let link;
      try {
        link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed meanwhile
      }
      const inode = /^socket:\[(\d+)\]$/.exec(link);
      if (inode && established.has(inode[1])) held += 1;
    }
    return held;
  });
}

/** How many CPUs the generator may run on (its affinity; the listener processes inherit it):
 * the most CPU, in shares of one core, that all its processes together can use. */
function generatorCores() {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const list = /^Cpus_allowed_list:\s*(\S+)/m.exec(status)[1];
  let count = 0;
  for (const part of list.split(",")) {
    const [a, b] = part.split("-").map(Number);
    count += b === undefined ? 1 : b - a + 1;
  }
  return count;
}

/** A monotonic clock in ms that every process of the machine shares (CLOCK_MONOTONIC), so a
 * listener process can subtract the sender process's send time from its arrival time. */
const clockMs = () => Number(process.hrtime.bigint()) / 1e6;

/** CPU seconds of the whole machine, from the first line of /proc/stat: in processes,
 * in interrupts (loopback TCP is mostly softirq time), and stolen by the hypervisor. */
function machineCpuSeconds() {
  const fields = fs.readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.slice(1).map(Number);
  const hz = opts.clkTck;
  return { tasks: (user + nice + system) / hz, irq: (irq + softirq) / hz, steal: steal / hz };
}

/** CPU seconds of the processes named in --services (e.g. redis-server, postgres), by name. */
function servicesCpuSeconds() {
  const byName = {};
  if (!opts.services) return byName;
  const names = new Set(opts.services.split(","));
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, "utf8");
    } catch {
      continue; // the process ended meanwhile
    }
    const comm = stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
    if (!names.has(comm)) continue;
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    byName[comm] = (byName[comm] ?? 0) + (Number(rest[11]) + Number(rest[12])) / opts.clkTck;
  }
  return byName;
}

/** Seconds by name spent between two readings of servicesCpuSeconds. */
function servicesSpent(before, after) {
  return Object.fromEntries(Object.entries(after).map(([n, s]) => [n, s - (before[n] ?? 0)]));
}

class Window {
  /** The measured interval: wall time and the CPU of the generator, the server, the backing
   * services, and everything else on the machine (a busy machine makes figures unreliable). */
  /** `pids`: the listener processes, whose CPU is the generator's as much as this one's. */
  constructor(pids = []) {
    this.pids = pids;
  }

  start() {
    this.procs0 = this.pids.map(pidCpuSeconds);
    this.services0 = servicesCpuSeconds();
    this.machine0 = machineCpuSeconds();
    this.server0 = serverCpuSeconds();
    this.cpu0 = process.cpuUsage();
    this.t0 = performance.now();
  }

  stop() {
    const seconds = (performance.now() - this.t0) / 1000;
    const cpu = process.cpuUsage(this.cpu0);
    const server1 = serverCpuSeconds();
    const machine1 = machineCpuSeconds();
    const servicesByName = servicesSpent(this.services0, servicesCpuSeconds());
    const services = Object.values(servicesByName).reduce((a, b) => a + b, 0);
    const own = (cpu.user + cpu.system) / 1e6;
    const procs = this.pids.map((pid, i) => pidCpuSeconds(pid) - this.procs0[i]);
    const generator = procs.reduce((a, b) => a + b, own);
    // Each server process's seconds (a server's workers), and their sum.
    const servers = server1 === null ? null : server1.map((s, i) => s - this.server0[i]);
    const server = servers === null ? null : servers.reduce((a, b) => a + b, 0);
    const tasks = machine1.tasks - this.machine0.tasks;
    const irq = machine1.irq - this.machine0.irq;
    const r = (v) => (v === null ? null : Math.round(v * 1000) / 1000);
    return {
      seconds,
      generator_cpu_s: generator,
      generator_cpu_pct: (100 * generator) / seconds,
      // Each generator process's share of one core: this one (the sender), then the listeners'.
      generator_procs_pct: [own, ...procs].map((v) => r((100 * v) / seconds)),
      generator_cores: generatorCores(),
      server_cpu_s: server,
      server_cpu_split_s: servers === null ? null : servers.map(r),
      // Read after the CPU figures, so the reading's own cost is outside them.
      server_sockets: serverSockets(),
      services_cpu_s: opts.services ? r(services) : null,
      services_cpu_by_name_s: opts.services
        ? Object.fromEntries(Object.entries(servicesByName).map(([n, s]) => [n, r(s)]))
        : null,
      // Every other process that ran meanwhile, in shares of one core (tick-rounded: ±2%).
      // Interrupt time counts too: the kernel charges a tick spent in a softirq to the
      // process it interrupted as well, so the server's and generator's times include theirs.
      other_cpu_pct: r((100 * (tasks + irq - (server ?? 0) - generator - services)) / seconds),
      irq_pct: r((100 * irq) / seconds),
      steal_pct: r((100 * (machine1.steal - this.machine0.steal)) / seconds),
    };
  }
}

function summarize(values) {
  const n = values.length;
  if (!n) return { count: 0 };
  const sorted = Float64Array.from(values).sort();
  const rank = (p) => sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))];
  let sum = 0;
  for (const v of sorted) sum += v;
  const r = (v) => Math.round(v * 1000) / 1000;
  return {
    count: n,
    mean_ms: r(sum / n),
    p50_ms: r(rank(50)),
    p90_ms: r(rank(90)),
    p99_ms: r(rank(99)),
    max_ms: r(sorted[n - 1]),
  };
}

function body(seq) {
  const head = `bench message ${seq} `;
  return head.length >= opts.bodySize ? head : head + "x".repeat(opts.bodySize - head.length);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Clients ----------------------------------------------------------------------------------
// Both expose: connect(), join(room), send({room, body, clientId, ref}), close(), and the
// callbacks onMessage(message) (the broadcast's message object: body, client_id, ...),
// onAck(ref, ok, info) and onError(code, message).

class ChatsiteClient {
  constructor(base, cookie) {
    this.base = base;
    this.cookie = cookie;
    this.onMessage = null;
    this.onAck = null;
    this.onError = null;
    this.pendingJoin = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const headers = { Origin: this.base };
      if (this.cookie) headers.Cookie = `sessionid=${this.cookie}`;
      const ws = new WebSocket(`${this.base.replace(/^http/, "ws")}/ws/chat/`, {
        headers,
        perMessageDeflate: false,
        handshakeTimeout: opts.connectTimeout * 1000,
      });
      this.ws = ws;
      ws.once("open", () => resolve());
      // `on`, not `once`: an unheard second error would crash the generator.
      ws.on("error", (error) => reject(error));
      ws.once("unexpected-response", (_req, res) =>
        reject(new Error(`handshake refused: HTTP ${res.statusCode}`)),
      );
      ws.on("message", (data) => this.receive(data));
      ws.on("close", () => {
        if (this.pendingJoin) this.pendingJoin.reject(new Error("closed while joining"));
      });
    });
  }

  receive(data) {
    const frame = JSON.parse(data);
    switch (frame.type) {
      case "message":
        if (this.onMessage) this.onMessage(frame.message);
        break;
      case "ack":
        if (this.onAck) this.onAck(frame.ref, true, frame);
        break;
      case "joined":
        if (this.pendingJoin) this.pendingJoin.resolve(frame);
        break;
      case "error":
        if (this.pendingJoin && frame.ref === "join") this.pendingJoin.reject(new Error(frame.code));
        else if (this.onAck && frame.ref) this.onAck(frame.ref, false, frame);
        if (this.onError) this.onError(frame.code, frame.message);
        break;
      default: // presence, typing, pong...: not part of the workload
    }
  }

  join(room) {
    return new Promise((resolve, reject) => {
      this.pendingJoin = {
        resolve: (frame) => {
          this.pendingJoin = null;
          resolve(frame);
        },
        reject: (error) => {
          this.pendingJoin = null;
          reject(error);
        },
      };
      this.sendFrame({ type: "join", room, ref: "join" });
    });
  }

  send({ room, body, clientId, ref }) {
    this.sendFrame({ type: "send", room, body, client_id: clientId, ref });
  }

  sendFrame(frame) {
    this.ws.send(JSON.stringify(frame));
  }

  close() {
    if (this.ws) this.ws.terminate();
  }
}

// chatsite's HTTP fallback (docs/protocol.md, "The HTTP fallback"), as fallback.js speaks
// it: the server's frames come down one text/event-stream response (read with `http`, parsed
// incrementally), the client's frames go up as numbered POSTs, one in flight per connection,
// up to 50 frames each. Every stream and POST of the process shares one keep-alive agent
// with no socket cap (N streams each hold a socket; POSTs reuse the idle ones).

let sharedAgent = null;
function httpAgent() {
  if (!sharedAgent) {
    sharedAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });
  }
  return sharedAgent;
}

// What the transport itself did, over the whole run (closes the generator asked for are not
// counted): for the fallback, refused POSTs and streams the server ended; for Socket.IO,
// disconnects.
const transportStats = {
  posts: 0,
  post_errors: 0,
  post_error_samples: [],
  server_closes: {}, // `event: close` codes → count
  stream_ends: 0, // streams that ended without a close event
  stream_errors: [],
  disconnects: {}, // Socket.IO disconnect reasons → count
};

function sample(list, text) {
  if (list.length < 5 && !list.includes(text)) list.push(text);
}

let csrfPromise = null;
/** One CSRF token for every POST of the process: the `csrftoken` cookie of the login page. */
function csrfToken(base) {
  if (!csrfPromise) {
    csrfPromise = new Promise((resolve, reject) => {
      const req = http.get(`${base}/accounts/login/`, { agent: httpAgent() }, (res) => {
        res.resume();
        const match = (res.headers["set-cookie"] || [])
          .map((cookie) => /^csrftoken=([^;]+)/.exec(cookie))
          .find(Boolean);
        if (res.statusCode !== 200) reject(new Error(`GET /accounts/login/: HTTP ${res.statusCode}`));
        else if (match) resolve(match[1]);
        else reject(new Error(`GET /accounts/login/: HTTP ${res.statusCode}, no csrftoken`));
      });
      req.on("error", reject);
    });
  }
  return csrfPromise;
}

const MAX_FRAMES_PER_POST = 50;
const POST_IDLE_MS = 20_000; // fallback.js POSTs [] after 20 s without a POST
const fallbackClients = new Set();

class ChatsiteFallbackClient extends ChatsiteClient {
  constructor(base, cookie) {
    super(base, cookie);
    this.token = null;
    this.csrf = null;
    this.batch = 0;
    this.outbox = [];
    this.posting = false;
    this.lastPost = 0;
    this.closing = false;
    this.gone = false; // the stream ended (close event, end or error)
  }

  async connect() {
    this.csrf = await csrfToken(this.base);
    await new Promise((resolve, reject) => {
      const headers = { Accept: "text/event-stream" };
      if (this.cookie) headers.Cookie = `sessionid=${this.cookie}`;
      const req = http.get(`${this.base}/fallback/chat/`, { agent: httpAgent(), headers });
      this.request = req;
      this.opened = resolve;
      req.on("response", (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          reject(new Error(`stream refused: HTTP ${res.statusCode}`));
          return;
        }
        this.readStream(res);
      });
      req.on("error", (error) => {
        if (!this.closing) sample(transportStats.stream_errors, String(error.message || error));
        reject(error);
        this.streamGone();
      });
    });
    fallbackClients.add(this);
    this.lastPost = performance.now();
  }

  readStream(res) {
    res.setEncoding("utf8");
    let buffer = "";
    let kind = "";
    let data = [];
    res.on("data", (chunk) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop();
      for (let line of lines) {
        if (line.endsWith("\r")) line = line.slice(0, -1);
        if (line === "") {
          // A blank line ends the event (one without data is dropped, as EventSource does).
          if (data.length) this.event(kind || "message", data.join("\n"));
          kind = "";
          data = [];
        } else if (line[0] !== ":") {
          const colon = line.indexOf(":");
          const name = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? "" : line.slice(colon + 1);
          if (value[0] === " ") value = value.slice(1);
          if (name === "event") kind = value;
          else if (name === "data") data.push(value);
        }
      }
    });
    res.on("end", () => {
      if (!this.gone && !this.closing) transportStats.stream_ends += 1;
      this.streamGone();
    });
    res.on("error", () => this.streamGone());
  }

  event(kind, data) {
    if (kind === "message") {
      this.receive(data);
    } else if (kind === "session") {
      this.token = JSON.parse(data).token;
      this.opened();
    } else if (kind === "close") {
      if (!this.closing) {
        const code = String(JSON.parse(data).code);
        transportStats.server_closes[code] = (transportStats.server_closes[code] || 0) + 1;
      }
      this.streamGone();
    }
  }

  streamGone() {
    this.gone = true;
    fallbackClients.delete(this);
    if (this.pendingJoin) this.pendingJoin.reject(new Error("stream ended while joining"));
  }

  sendFrame(frame) {
    this.outbox.push(frame);
    this.post();
  }

  /** POST what the outbox holds (or `[]`, with `empty`), unless a POST is in flight. */
  post(empty = false) {
    if (this.posting || this.gone || this.closing || (!this.outbox.length && !empty)) return;
    const payload = JSON.stringify(this.outbox.splice(0, MAX_FRAMES_PER_POST));
    this.batch += 1;
    this.posting = true;
    this.lastPost = performance.now();
    transportStats.posts += 1;
    const cookies = [`csrftoken=${this.csrf}`];
    if (this.cookie) cookies.push(`sessionid=${this.cookie}`);
    const req = http.request(`${this.base}/fallback/chat/send/`, {
      method: "POST",
      agent: httpAgent(),
      headers: {
        "Content-Type": "application/json",
        "Content-Length": Buffer.byteLength(payload),
        "X-Chat-Session": this.token,
        "X-Chat-Batch": String(this.batch),
        "X-CSRFToken": this.csrf,
        Origin: this.base,
        Cookie: cookies.join("; "),
      },
    });
    const done = (problem) => {
      this.posting = false;
      if (problem && !this.closing) {
        transportStats.post_errors += 1;
        sample(transportStats.post_error_samples, problem);
        if (this.onError) this.onError("post_failed", problem);
      }
      this.post();
    };
    req.on("response", (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        text += chunk;
      });
      res.on("end", () => done(res.statusCode === 202 ? null : `HTTP ${res.statusCode} ${text}`));
    });
    req.on("error", (error) => done(String(error.message || error)));
    req.end(payload);
  }

  close() {
    this.closing = true;
    fallbackClients.delete(this);
    if (this.request) this.request.destroy();
  }
}

// The keepalive POST of a connection with nothing to say (the server drops it after 60 s).
setInterval(() => {
  const now = performance.now();
  for (const client of fallbackClients) {
    if (now - client.lastPost > POST_IDLE_MS) client.post(true);
  }
}, 1000).unref();

class SocketioClient {
  constructor(base) {
    this.base = base;
    this.onMessage = null;
    this.onAck = null;
    this.onError = null;
  }

  connect() {
    return new Promise((resolve, reject) => {
      // Long-polling gets the keep-alive agent the fallback client uses (engine.io's default
      // in Node is no agent: a new TCP connection per poll).
      const polling = opts.transport === "http";
      const socket = ioClient(this.base, {
        transports: polling ? ["polling"] : ["websocket"],
        ...(polling ? { agent: httpAgent() } : {}),
        forceNew: true,
        reconnection: false,
        timeout: opts.connectTimeout * 1000,
      });
      this.socket = socket;
      socket.once("connect", () => {
        const used = socket.io.engine.transport.name;
        if (used !== (polling ? "polling" : "websocket")) reject(new Error(`transport ${used}`));
        else resolve();
      });
      socket.once("connect_error", (error) => reject(error));
      socket.on("disconnect", (reason) => {
        if (this.closing) return;
        transportStats.disconnects[reason] = (transportStats.disconnects[reason] || 0) + 1;
      });
      socket.on("chat message", (message) => {
        if (this.onMessage) this.onMessage(message);
      });
    });
  }

  join(room) {
    return new Promise((resolve) => this.socket.emit("join", room, resolve));
  }

  send({ room, body, clientId, ref }) {
    const msg = { room, body, id: clientId };
    if (ref === undefined) {
      this.socket.emit("chat message", msg);
    } else {
      this.socket.emit("chat message", msg, (info) => {
        if (this.onAck) this.onAck(ref, true, info);
      });
    }
  }

  close() {
    this.closing = true;
    if (this.socket) this.socket.disconnect();
  }
}

function loadCookies() {
  if (!opts.cookies) return [];
  const cookies = JSON.parse(fs.readFileSync(opts.cookies, "utf8"));
  if (!Array.isArray(cookies)) throw new Error(`${opts.cookies}: expected a JSON list`);
  return cookies;
}

function newClient(cookie) {
  if (opts.target === "socketio") return new SocketioClient(opts.url);
  if (opts.target === "websockets" && opts.transport === "http") {
    throw new Error("the websockets reference server has no HTTP transport");
  }
  return opts.transport === "http"
    ? new ChatsiteFallbackClient(opts.url, cookie)
    : new ChatsiteClient(opts.url, cookie);
}

/** Open `count` joined sockets, `opts.batch` at a time; returns them and the failures. */
function openSockets(count, cookieFor, roomFor = () => opts.room) {
  return openWith(count, (i) => newClient(cookieFor(i)), roomFor);
}

/** openSockets for clients that `make(i)` builds (a library client or a raw listener). */
async function openWith(count, make, roomFor = () => opts.room) {
  const clients = [];
  const failures = [];
  const started = performance.now();
  for (let first = 0; first < count; first += opts.batch) {
    const batch = [];
    for (let i = first; i < Math.min(count, first + opts.batch); i++) {
      const client = make(i);
      batch.push(
        withTimeout(
          client.connect().then(() => client.join(roomFor(i))),
          opts.connectTimeout * 1000,
          "connect and join",
        ).then(
          () => client,
          (error) => {
            client.close();
            failures.push(String(error.message || error));
            return null;
          },
        ),
      );
    }
    for (const client of await Promise.all(batch)) if (client) clients.push(client);
  }
  const seconds = (performance.now() - started) / 1000;
  log(`${clients.length}/${count} sockets joined in ${seconds.toFixed(1)} s`);
  return { clients, failures, seconds };
}

function connectReport(opened, wanted) {
  return {
    wanted,
    connected: opened.clients.length,
    failures: opened.failures.length,
    failure_samples: [...new Set(opened.failures)].slice(0, 5),
    seconds: Math.round(opened.seconds * 100) / 100,
  };
}

async function closeAll(clients) {
  for (const client of clients) client.close();
  await sleep(200);
}

// Workloads --------------------------------------------------------------------------------

// The raw listener -------------------------------------------------------------------------
// A broadcast listener that costs the generator as little as a WebSocket client can: a TCP
// socket, the upgrade written by hand, server frames parsed in place (they are unmasked), and
// a message recognised by one search for the run's client_id prefix in its payload, with no
// JSON parse. Socket.IO's engine.io handshake ("0{...}", "40", then a join with an ack id) and
// pings (engine.io "2" → "3", WebSocket ping → pong) are answered; everything else is skipped.

const net = require("node:net");
const crypto = require("node:crypto");

/** One client frame (clients must mask): text (0x1) or pong (0xA), under 64 KiB. */
function maskedFrame(opcode, payload) {
  const data = Buffer.from(payload);
  const len = data.length;
  const head = len < 126 ? 2 : 4;
  const frame = Buffer.alloc(head + 4 + len);
  frame[0] = 0x80 | opcode;
  if (len < 126) frame[1] = 0x80 | len;
  else {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(len, 2);
  }
  const mask = crypto.randomBytes(4);
  mask.copy(frame, head);
  for (let i = 0; i < len; i++) frame[head + 4 + i] = data[i] ^ mask[i & 3];
  return frame;
}

class RawListener {
  constructor(base, prefix) {
    this.url = new URL(base);
    this.prefix = Buffer.from(prefix);
    // Until the run sets them (once every listener is open), a message frame is counted in
    // `early`: it came before the run's sender sent anything, so it is not of this run.
    this.early = 0;
    this.onSeq = () => {
      this.early += 1;
    }; // (seq) for a message of this run
    this.onOther = () => {
      this.early += 1;
    }; // a message frame that is not of this run
    this.buffer = null;
    this.upgraded = false;
    this.waiter = null; // during setup: (text) => handled?
    this.closed = false;
  }

  connect() {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.url.hostname, port: Number(this.url.port) });
      this.socket = socket;
      socket.setNoDelay(true);
      const path = opts.target === "socketio" ? "/socket.io/?EIO=4&transport=websocket" : "/ws/chat/";
      socket.on("connect", () =>
        socket.write(
          `GET ${path} HTTP/1.1\r\nHost: ${this.url.host}\r\nUpgrade: websocket\r\n` +
            "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
            `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString("base64")}\r\n` +
            `Origin: ${this.url.origin}\r\n\r\n`,
        ),
      );
      socket.on("error", (error) => {
        if (this.waiter) this.waiter(null, error);
        reject(error);
      });
      socket.on("close", () => {
        this.closed = true;
        if (this.waiter) this.waiter(null, new Error("closed while setting up"));
      });
      socket.on("data", (chunk) => this.receive(chunk));
      this.upgradeDone = () => {
        if (opts.target !== "socketio") return resolve();
        // engine.io's open packet, then the Socket.IO namespace connect.
        this.expect((text) => text[0] === "0")
          .then(() => {
            this.sendText("40");
            return this.expect((text) => text.startsWith("40"));
          })
          .then(resolve, reject);
      };
      this.upgradeFailed = (line) => reject(new Error(`handshake refused: ${line}`));
    });
  }

  /** Resolves with the first text frame `match` accepts (setup only). */
  expect(match) {
    return new Promise((resolve, reject) => {
      this.waiter = (text, error) => {
        if (error) {
          this.waiter = null;
          reject(error);
        } else if (match(text)) {
          this.waiter = null;
          resolve(text);
        }
      };
    });
  }

  join(room) {
    if (opts.target === "socketio") {
      this.sendText(`420${JSON.stringify(["join", room])}`);
      return this.expect((text) => text.startsWith("430"));
    }
    this.sendText(JSON.stringify({ type: "join", room, ref: "join" }));
    return this.expect((text) => {
      if (/"ref"\s*:\s*"join"/.test(text) && /"type"\s*:\s*"error"/.test(text)) {
        throw new Error(`join refused: ${text.slice(0, 200)}`);
      }
      return /"type"\s*:\s*"joined"/.test(text);
    });
  }

  sendText(text) {
    this.socket.write(maskedFrame(0x1, text));
  }

  receive(chunk) {
    let buf = this.buffer ? Buffer.concat([this.buffer, chunk]) : chunk;
    let pos = 0;
    if (!this.upgraded) {
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        this.buffer = buf;
        return;
      }
      const status = buf.toString("latin1", 0, buf.indexOf("\r\n"));
      if (!status.startsWith("HTTP/1.1 101")) {
        this.upgradeFailed(status);
        this.socket.destroy();
        return;
      }
      this.upgraded = true;
      pos = end + 4;
      this.upgradeDone();
    }
    while (buf.length - pos >= 2) {
      const opcode = buf[pos] & 0x0f;
      let len = buf[pos + 1] & 0x7f;
      let start = pos + 2;
      if (len === 126) {
        if (buf.length - pos < 4) break;
        len = buf.readUInt16BE(pos + 2);
        start = pos + 4;
      } else if (len === 127) {
        if (buf.length - pos < 10) break;
        len = Number(buf.readBigUInt64BE(pos + 2));
        start = pos + 10;
      }
      const end = start + len;
      if (end > buf.length) break;
      if (opcode === 0x1) this.text(buf, start, end);
      else if (opcode === 0x9) this.socket.write(maskedFrame(0xa, buf.subarray(start, end)));
      else if (opcode === 0x8) this.socket.end();
      pos = end;
    }
    this.buffer = pos < buf.length ? buf.subarray(pos) : null;
  }

  text(buf, start, end) {
    if (this.waiter) {
      this.waiter(buf.toString("utf8", start, end));
      return;
    }
    const at = buf.indexOf(this.prefix, start);
    if (at >= 0 && at + this.prefix.length < end) {
      let seq = 0;
      for (let i = at + this.prefix.length; i < end; i++) {
        const digit = buf[i] - 48;
        if (digit < 0 || digit > 9) break;
        seq = seq * 10 + digit;
      }
      this.onSeq(seq);
    } else if (opts.target === "socketio") {
      if (end - start === 1 && buf[start] === 0x32) this.sendText("3"); // engine.io ping
      else if (buf.indexOf("chat message", start) >= 0 && buf.indexOf("chat message", start) < end) {
        this.onOther();
      }
    } else {
      const type = buf.indexOf('"type":"message"', start);
      if (type >= 0 && type < end) this.onOther();
    }
  }

  close() {
    if (this.socket) this.socket.destroy();
  }
}

// The native listeners -----------------------------------------------------------------------
// The same listener process in C (listeners.c, built by bench/run.py), for when the cheapest
// JavaScript client still costs about what a bare server spends per delivery: then the
// generator, not the server, sets the pace. It answers the IPC messages of listenerProcess()
// as JSON lines on its stdout and takes them as text lines on its stdin.

/** A listener process of `count` native clients, with a forked child's interface: pid,
 * send(msg), "message" and "exit" events, kill(). */
function nativeListeners(count, prefix) {
  const { spawn } = require("node:child_process");
  const url = new URL(opts.url);
  const child = spawn(
    opts.native,
    ["--host", url.hostname, "--port", url.port, "--target", opts.target, "--room", opts.room,
     "--prefix", prefix, "--count", String(count), "--batch", String(opts.batch),
     "--connect-timeout", String(opts.connectTimeout)],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  readline.createInterface({ input: child.stdout }).on("line", (line) => {
    const msg = JSON.parse(line);
    if (msg.type === "result") msg.transport_stats = {}; // no HTTP transport to count
    child.emit("message", msg);
  });
  child.send = (msg) => {
    const words = {
      connect: ["connect"],
      sent: ["sent", msg.seq, msg.sentAt, msg.measuring ? 1 : 0],
      giveup: ["giveup", msg.seq],
      finish: ["finish"],
    }[msg.type];
    child.stdin.write(`${words.join(" ")}\n`);
  };
  child.stdin.on("error", () => {}); // it exited; its "exit" event says so
  return child;
}

// Broadcast --------------------------------------------------------------------------------
// The sender (this process) and the listeners (--procs listener processes) talk over IPC:
//   listener → main: {type: "ready", connect}, {type: "complete", seq, missing}, {type: "result", ...}
//   main → listener: {type: "sent", seq, sentAt, measuring}, {type: "giveup", seq}, {type: "finish"}
// A listener process answers each seq once: when all its listeners have it, or when the main
// process gives it up after --timeout (then with how many lack it).

async function broadcast() {
  const cookies = loadCookies();
  if (opts.target === "chatsite" && !cookies.length) throw new Error("chatsite senders need --cookies");
  const { fork } = require("node:child_process");
  const prefix = `b${Date.now().toString(36)}-`;
  const procs = Math.max(1, Math.min(opts.procs, opts.listeners));
  const shares = Array.from({ length: procs }, (_, i) =>
    Math.floor(opts.listeners / procs) + (i < opts.listeners % procs ? 1 : 0),
  );
  const passOn = ["--target", opts.target, "--url", opts.url, "--room", opts.room];
  // A forked listener process runs JavaScript clients: over HTTP every --client is the same.
  const forkedClient = opts.client === "native" ? "raw" : opts.client;
  passOn.push("--transport", opts.transport, "--client", forkedClient, "--batch", String(opts.batch));
  passOn.push("--connect-timeout", String(opts.connectTimeout), "--deadline", String(opts.deadline));
  const native = opts.transport === "ws" && opts.client === "native";
  const workers = shares.map((share) => {
    const child = native
      ? nativeListeners(share, prefix)
      : fork(
          __filename,
          [...passOn, "--role", "listeners", "--prefix", prefix, "broadcast", "--listeners", String(share)],
          { serialization: "advanced", stdio: ["ignore", "ignore", "inherit", "ipc"] },
        );
    const worker = { child, share, ready: null, result: null, answered: true, missing: 0 };
    worker.ready = new Promise((resolve, reject) => {
      worker.onReady = resolve;
      child.once("exit", (code) => reject(new Error(`a listener process exited (${code})`)));
    });
    return worker;
  });
  // The listener processes connect one after another, so the ramp is the same as one's.
  const listenerReports = [];
  for (const worker of workers) {
    worker.child.on("message", (msg) => onWorker(worker, msg));
    worker.child.send({ type: "connect" });
    listenerReports.push((await worker.ready).connect);
  }
  const connected = listenerReports.reduce((a, r) => a + r.connected, 0);
  const listenersOpened = {
    wanted: opts.listeners,
    connected,
    failures: listenerReports.reduce((a, r) => a + r.failures, 0),
    failure_samples: [...new Set(listenerReports.flatMap((r) => r.failure_samples))].slice(0, 5),
    seconds: Math.round(listenerReports.reduce((a, r) => a + r.seconds, 0) * 100) / 100,
  };
  const senderOpened = await openSockets(1, () => cookies[0]);
  if (!senderOpened.clients.length) throw new Error(`the sender could not join: ${senderOpened.failures}`);
  const sender = senderOpened.clients[0];
  const n = connected;
  if (!n) throw new Error("no listener could join");
  const live = workers.filter((w) => w.share && w.connected);

  const rounds = []; // send → last listener process's answer, per measured message
  const window = new Window(workers.map((w) => w.child.pid));
  let seq = 0;
  let sentAt = 0;
  let waiting = 0; // listener processes yet to answer the message in flight
  let missing = 0;
  let measuring = false;
  let measured = 0;
  let dropped = 0;
  let droppedMessages = 0;
  let warmupMessages = 0;
  const errors = [];
  const warmupEnd = performance.now() + opts.warmup * 1000;
  let done;
  const finished = new Promise((resolve) => {
    done = resolve;
  });
  let windowResult = null;

  sender.onError = (code, message) => errors.push(`${code}: ${message}`);

  function onWorker(worker, msg) {
    if (msg.type === "ready") {
      worker.connected = msg.connect.connected;
      worker.onReady(msg);
    } else if (msg.type === "complete") {
      if (msg.seq !== seq || worker.answered) return;
      worker.answered = true;
      missing += msg.missing;
      waiting -= 1;
      if (waiting === 0) complete();
    } else if (msg.type === "result") {
      worker.result = msg;
      worker.onResult();
    }
  }

  function sendNext() {
    seq += 1;
    waiting = live.length;
    missing = 0;
    sentAt = performance.now();
    const at = clockMs();
    for (const worker of live) {
      worker.answered = false;
      worker.child.send({ type: "sent", seq, sentAt: at, measuring });
    }
    sender.send({ room: opts.room, body: body(seq), clientId: prefix + seq, ref: `r${seq}` });
  }

  function complete() {
    const now = performance.now();
    if (missing) log(`message ${seq}: ${missing} of ${n} listeners lack it after ${opts.timeout} s`);
    if (measuring) {
      measured += 1;
      rounds.push(now - sentAt);
      dropped += missing;
      if (missing) droppedMessages += 1;
      const enough = opts.messages
        ? measured >= opts.messages
        : now - window.t0 >= opts.duration * 1000;
      if (enough) {
        windowResult = window.stop();
        measuring = false;
        done();
        return;
      }
    } else {
      warmupMessages += 1;
      if (now >= warmupEnd && warmupMessages >= 3) {
        measuring = true;
        window.start();
      }
    }
    sendNext();
  }

  // One watchdog instead of a timer per message: a message older than --timeout is given up.
  let gaveUp = 0;
  const watchdog = setInterval(() => {
    if (waiting > 0 && performance.now() - sentAt > opts.timeout * 1000 && gaveUp !== seq) {
      gaveUp = seq;
      for (const worker of live) if (!worker.answered) worker.child.send({ type: "giveup", seq });
    }
  }, 50);

  sendNext();
  await finished;
  clearInterval(watchdog);
  await sleep(100); // let stragglers of the last message count as late, not vanish
  const results = await Promise.all(
    live.map(
      (worker) =>
        new Promise((resolve) => {
          worker.onResult = () => resolve(worker.result);
          worker.child.send({ type: "finish" });
        }),
    ),
  );
  const latencies = results.flatMap((r) => Array.from(r.latencies));
  const sum = (key) => results.reduce((a, r) => a + r[key], 0);
  const deliveries = latencies.length;
  const result = {
    event: "result",
    target: opts.target,
    transport: opts.transport, // the listeners' and the sender's
    client: opts.transport === "ws" ? opts.client : "lib",
    workload: "broadcast",
    listeners: n,
    listener_procs: live.length,
    connect: { listeners: listenersOpened, sender: connectReport(senderOpened, 1) },
    window: windowResult,
    messages: measured,
    warmup_messages: warmupMessages,
    deliveries,
    expected_deliveries: measured * n,
    dropped,
    dropped_messages: droppedMessages,
    late: sum("late"),
    duplicates: sum("duplicates"),
    foreign: sum("foreign"),
    server_errors: errors.length,
    error_samples: errors.slice(0, 5),
    delivered_per_s: deliveries / windowResult.seconds,
    messages_per_s: measured / windowResult.seconds,
    server_us_per_delivery:
      windowResult.server_cpu_s === null || !deliveries
        ? null
        : (windowResult.server_cpu_s * 1e6) / deliveries,
    generator_us_per_delivery: deliveries ? (windowResult.generator_cpu_s * 1e6) / deliveries : null,
    latency: summarize(latencies),
    round: summarize(rounds),
    transport_stats: mergeStats(results.map((r) => r.transport_stats)),
  };
  await closeAll([sender]);
  for (const worker of workers) worker.child.kill();
  return result;
}

function mergeStats(all) {
  const merged = structuredClone(transportStats);
  for (const stats of all) {
    for (const [key, value] of Object.entries(stats)) {
      if (typeof value === "number") merged[key] += value;
      else if (Array.isArray(value)) for (const v of value) sample(merged[key], v);
      else for (const [k, v] of Object.entries(value)) merged[key][k] = (merged[key][k] || 0) + v;
    }
  }
  return merged;
}

/** A listener process of the broadcast (--role listeners): opens its share of listeners when
 * told, answers each message once, and sends its latencies when told to finish. */
function listenerProcess() {
  const n0 = opts.listeners;
  const prefix = opts.prefix;
  const raw = opts.transport === "ws" && opts.client === "raw";
  let clients = [];
  let got = null;
  let seq = 0; // the message announced last by the main process
  let sentAt = 0;
  let measuring = false;
  let remaining = 0;
  let answered = true;
  const early = []; // listener indexes that got message seq + 1 before it was announced
  const latencies = [];
  let late = 0;
  let duplicates = 0;
  let foreign = 0;

  function answer() {
    answered = true;
    process.send({ type: "complete", seq, missing: remaining });
  }

  function arrived(index, s) {
    if (s === seq && !answered) {
      if (got[index] === s) {
        duplicates += 1;
        return;
      }
      got[index] = s;
      if (measuring) latencies.push(clockMs() - sentAt);
      remaining -= 1;
      if (remaining === 0) answer();
    } else if (s === seq + 1) {
      early.push(index);
    } else if (s === seq && got[index] === s) {
      duplicates += 1;
    } else {
      late += 1;
    }
  }

  async function open() {
    let opened;
    if (raw) {
      opened = await openWith(n0, () => new RawListener(opts.url, prefix));
      opened.clients.forEach((client, index) => {
        foreign += client.early;
        client.onSeq = (s) => arrived(index, s);
        client.onOther = () => {
          foreign += 1;
        };
      });
    } else {
      opened = await openSockets(n0, () => null);
      opened.clients.forEach((client, index) => {
        client.onMessage = (message) => {
          const cid = message.client_id;
          if (typeof cid !== "string" || !cid.startsWith(prefix)) foreign += 1;
          else arrived(index, Number(cid.slice(prefix.length)));
        };
      });
    }
    clients = opened.clients;
    got = new Int32Array(clients.length).fill(-1);
    process.send({ type: "ready", connect: connectReport(opened, n0) });
  }

  process.on("message", (msg) => {
    if (msg.type === "connect") {
      open().catch((error) => {
        log(String(error.stack || error));
        process.exit(1);
      });
    } else if (msg.type === "sent") {
      seq = msg.seq;
      sentAt = msg.sentAt;
      measuring = msg.measuring;
      remaining = clients.length;
      answered = false;
      const now = early.splice(0);
      for (const index of now) arrived(index, seq);
    } else if (msg.type === "giveup") {
      if (msg.seq === seq && !answered) answer();
    } else if (msg.type === "finish") {
      process.send({
        type: "result",
        latencies: Float64Array.from(latencies),
        late,
        duplicates,
        foreign,
        transport_stats: transportStats,
      });
      for (const client of clients) client.close();
      setTimeout(() => process.exit(0), 200);
    }
  });
  process.on("disconnect", () => process.exit(0));
}

async function acks() {
  const cookies = loadCookies();
  if (opts.target === "chatsite" && cookies.length < opts.senders) {
    throw new Error(`chatsite needs ${opts.senders} sender session ids in --cookies`);
  }
  // Each sender in its own room (`--own-rooms`: chatsite needs rooms PREFIX000, PREFIX001...)
  // measures the ack path alone; in one shared room every send is also a broadcast to all.
  const roomOf = (i) => (opts.ownRooms ? `${opts.ownRooms}${String(i).padStart(3, "0")}` : opts.room);
  const opened = await openSockets(opts.senders, (i) => cookies[i], roomOf);
  const senders = opened.clients;
  if (!senders.length) throw new Error("no sender could join");
  const prefix = `a${Date.now().toString(36)}-`;
  const window = new Window();
  const latencies = [];
  const errors = [];
  let measuring = false;
  let stopping = false;
  let acked = 0;
  let timeouts = 0;
  let deliveries = 0; // the broadcasts the senders hear of each other's messages
  let windowResult = null;
  let counter = 0;
  // Every broadcast must reach every socket in its room: counted over the whole run.
  let storedTotal = 0; // sends acked: stored, so broadcast
  let receivedTotal = 0;
  let unresolved = 0; // sends given up without ack or error: stored or not, unknown

  const state = senders.map(() => ({ ref: null, sentAt: 0 }));
  function sendFrom(index) {
    if (stopping) return;
    const id = ++counter;
    const s = state[index];
    s.ref = `r${id}`;
    s.sentAt = performance.now();
    senders[index].send({ room: roomOf(index), body: body(id), clientId: prefix + id, ref: s.ref });
  }

  senders.forEach((client, index) => {
    client.onAck = (ref, ok, info) => {
      const s = state[index];
      if (ref !== s.ref) return; // a reply to a send already given up
      s.ref = null;
      if (!ok) {
        errors.push(`${info.code}: ${info.message}`);
      } else {
        storedTotal += 1;
        if (measuring) {
          latencies.push(performance.now() - s.sentAt);
          acked += 1;
        }
      }
      sendFrom(index);
    };
    client.onMessage = () => {
      receivedTotal += 1;
      if (measuring) deliveries += 1;
    };
  });

  const watchdog = setInterval(() => {
    const now = performance.now();
    state.forEach((s, index) => {
      if (s.ref !== null && now - s.sentAt > opts.timeout * 1000) {
        if (measuring) timeouts += 1;
        unresolved += 1;
        s.ref = null;
        sendFrom(index);
      }
    });
  }, 50);

  senders.forEach((_, index) => sendFrom(index));
  await sleep(opts.warmup * 1000);
  measuring = true;
  window.start();
  await sleep(opts.duration * 1000);
  windowResult = window.stop();
  measuring = false;
  stopping = true;
  // Let the sends in flight be answered, then their broadcasts arrive (both bounded).
  const members = opts.ownRooms ? 1 : senders.length;
  const settleUntil = performance.now() + opts.timeout * 1000;
  while (state.some((s) => s.ref !== null) && performance.now() < settleUntil) await sleep(20);
  clearInterval(watchdog);
  unresolved += state.filter((s) => s.ref !== null).length;
  const expected = storedTotal * members;
  const arriveUntil = performance.now() + 3000;
  while (receivedTotal < expected && performance.now() < arriveUntil) await sleep(20);
  const result = {
    event: "result",
    target: opts.target,
    workload: "acks",
    senders: senders.length,
    rooms: opts.ownRooms ? "own" : "shared",
    connect: connectReport(opened, opts.senders),
    window: windowResult,
    acks: acked,
    acks_per_s: acked / windowResult.seconds,
    ack_timeouts: timeouts,
    server_errors: errors.length,
    error_samples: [...new Set(errors)].slice(0, 5),
    deliveries,
    delivered_per_s: deliveries / windowResult.seconds,
    // Over the whole run: each acked message times the sockets in its room.
    broadcasts_expected: expected,
    broadcasts_received: receivedTotal,
    broadcasts_missing: Math.max(0, expected - receivedTotal),
    unresolved_sends: unresolved,
    server_us_per_ack:
      windowResult.server_cpu_s === null || !acked ? null : (windowResult.server_cpu_s * 1e6) / acked,
    latency: summarize(latencies),
  };
  await closeAll(senders);
  return result;
}

function stdinLines() {
  const rl = readline.createInterface({ input: process.stdin });
  const queue = [];
  const waiters = [];
  rl.on("line", (line) => {
    const waiter = waiters.shift();
    if (waiter) waiter(line.trim());
    else queue.push(line.trim());
  });
  rl.on("close", () => {
    for (const waiter of waiters.splice(0)) waiter(null);
    queue.push(null);
  });
  return (what, ms) =>
    withTimeout(
      new Promise((resolve) => {
        if (queue.length) resolve(queue.shift());
        else waiters.push(resolve);
      }).then((line) => {
        if (line !== what) throw new Error(`expected "${what}" on stdin, got ${JSON.stringify(line)}`);
      }),
      ms,
      `waiting for "${what}" on stdin`,
    );
}

/** Opens `count` joined sockets in a native listener process (--client native): resolves
 * with its connect report and a close(). */
function openNativeSockets(count) {
  const child = nativeListeners(count, "");
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`a native listener process exited (${code})`)));
    child.on("message", (msg) => {
      if (msg.type !== "ready") return;
      const close = () => {
        child.send({ type: "finish" });
        return new Promise((done) => child.once("exit", done));
      };
      resolve({ child, connect: msg.connect, close });
    });
    child.send({ type: "connect" });
  });
}

/** Opens `count` sockets with --client's client: {connect (report), pids, close()}. */
async function openIdle(count) {
  if (opts.client === "native") {
    const opened = await openNativeSockets(count);
    return { connect: opened.connect, pids: [opened.child.pid], close: opened.close };
  }
  const opened = await openSockets(count, () => null);
  return {
    connect: connectReport(opened, count),
    pids: [],
    close: () => closeAll(opened.clients),
  };
}

async function idle() {
  const expect = stdinLines();
  // Warm the server up first, so its lazily built state (imports, database connection,
  // thread pool) is in the baseline rather than charged to the idle sockets.
  const warm = await openIdle(Math.min(20, opts.sockets));
  await warm.close();
  await sleep(500);
  emit({ event: "baseline" });
  await expect("go", 60_000);
  // The generator's CPU over the storm: this process's and a native process's, which starts
  // before the window opens (its CPU until then is its start-up, a few milliseconds).
  const cpu0 = process.cpuUsage();
  const opened = await openIdle(opts.sockets);
  const own = process.cpuUsage(cpu0);
  const generatorCpuS = opened.pids.reduce((a, pid) => a + pidCpuSeconds(pid), (own.user + own.system) / 1e6);
  emit({ event: "ready", sockets: opened.connect.connected });
  await expect("close", 120_000);
  const result = {
    event: "result",
    target: opts.target,
    workload: "idle",
    client: opts.client === "native" ? "native" : "lib",
    sockets: opened.connect.connected,
    connect: opened.connect,
    sockets_per_s: opened.connect.connected / opened.connect.seconds,
    // In shares of one core, over the storm.
    generator_cpu_pct: (100 * generatorCpuS) / opened.connect.seconds,
  };
  await opened.close();
  return result;
}

async function main() {
  if (opts.role === "listeners") {
    clearTimeout(deadlineTimer);
    listenerProcess();
    return;
  }
  const workloads = { broadcast, acks, idle };
  const result = await workloads[opts.workload]();
  emit(result);
  clearTimeout(deadlineTimer);
  process.exit(0);
}

main().catch((error) => {
  emit({ event: "error", error: String(error.stack || error) });
  process.exit(1);
});
