// The connection status line (#status): its text for screen readers and people, its state
// (and, when connected, its transport) for the stylesheet and the tests.
const TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  delayed: "Live updates delayed",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

// kind: a key of TEXT ("delayed": connected, but the server's broadcasts are not live).
// transport: "websocket" | "http" when connected; the HTTP fallback is named in the text
// itself, so it is read out, not only styled.
export function showStatus(el, kind, transport = null) {
  const http = kind === "connected" && transport === "http";
  el.textContent = http ? "Connected (HTTP)" : TEXT[kind];
  el.dataset.state = kind;
  if ((kind === "connected" || kind === "delayed") && transport) el.dataset.transport = transport;
  else delete el.dataset.transport;
}

// The status line of a page's one connection: what the transport says of it, and what the
// server says of its broadcasts (`live` frames, and every pong: false while the worker has
// lost its channel layer, so others' messages arrive late). A new connection (after a drop,
// or on another transport) is live until its server says otherwise.
export class StatusLine {
  constructor(el) {
    this.el = el;
    this.kind = el.dataset.state || "offline";
    this.transport = null;
    this.live = true;
  }

  connection(kind, transport = null) {
    if (kind !== "connected" || transport !== this.transport) this.live = true;
    this.kind = kind;
    this.transport = transport;
    this.render();
  }

  setLive(ok) {
    this.live = ok;
    this.render();
  }

  render() {
    const kind = this.kind === "connected" && !this.live ? "delayed" : this.kind;
    showStatus(this.el, kind, this.transport);
  }
}
