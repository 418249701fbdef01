// The room's server-rendered list starts at its newest line, as room.js keeps it later: this
// classic script runs as the parser reaches it (the end of the page's content, after the
// stylesheet), before the first paint, so a slow phone shows the latest messages at once
// instead of the page's oldest until the modules have loaded. A room opened at a message
// (?at=<seq>, a search result) is left to room.js, which centres that message.
(() => {
  const list = document.getElementById("messages");
  if (list && !new URLSearchParams(window.location.search).has("at")) list.scrollTop = list.scrollHeight;
})();
