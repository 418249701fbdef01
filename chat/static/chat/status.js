// The connection status line (#status): its text for screen readers and people, its state
// for the stylesheet.
const TEXT = {
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
};

export function showStatus(el, kind) {
  el.textContent = TEXT[kind];
  el.dataset.state = kind;
}
