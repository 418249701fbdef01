// The connection status line (#status): its text for screen readers and people, its state
// (and, when connected, its transport) for the stylesheet and the tests.
const TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

// kind: a key of TEXT. transport: "websocket" | "http" when connected; the HTTP fallback is
// named in the text itself, so it is read out, not only styled.
export function showStatus(el, kind, transport = null) {
  const http = kind === "connected" && transport === "http";
  el.textContent = http ? "Connected (HTTP)" : TEXT[kind];
  el.dataset.state = kind;
  if (kind === "connected" && transport) el.dataset.transport = transport;
  else delete el.dataset.transport;
}
