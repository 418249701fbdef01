// The lobby: each listed room's online count and the user's unread count, live. The socket
// follows the rooms quietly (a quiet join is not counted online) from the last seq the page
// showed, so it hears new messages, presence and read marks without fetching old messages.
import { RoomCounts } from "./counts.js";
import { ChatClient } from "./sync.js";
import { keepOpen } from "./transport.js";

const config = JSON.parse(document.getElementById("lobby-config").textContent);
const items = new Map();
for (const li of document.querySelectorAll("li[data-room]")) {
  if (items.size < config.maxRooms) items.set(li.dataset.room, li);
}
const counts = new RoomCounts({
  username: config.username,
  rooms: Array.from(items.values(), (li) => ({
    slug: li.dataset.room,
    lastSeq: Number(li.dataset.lastSeq),
    read: li.dataset.read === "" ? null : Number(li.dataset.read),
    unread: Number(li.dataset.unread),
  })),
  render,
});

function render(slug) {
  const li = items.get(slug);
  if (!li) return;
  const unread = counts.unread(slug);
  const badge = li.querySelector(".unread");
  badge.textContent = String(unread);
  badge.hidden = unread === 0;
  const { users, guests } = counts.online(slug);
  const parts = [];
  if (users) parts.push(`${users} online`);
  if (guests) parts.push(guests === 1 ? "1 guest" : `${guests} guests`);
  li.querySelector(".online-count").textContent = parts.join(" · ");
}

let socket = null;
const client = new ChatClient({
  send: (frame) => socket !== null && socket.send(frame),
  view: {
    joined: (frame) => counts.joined(frame),
    message: (room, msg) => counts.message(room, msg),
    frame(frame) {
      const handler = counts[frame.type];
      if (typeof handler === "function" && ["presence", "guests", "read"].includes(frame.type)) {
        handler.call(counts, frame);
      }
    },
  },
});
for (const [slug, li] of items) client.watch(slug, Number(li.dataset.lastSeq), { quiet: true });
socket = keepOpen(client);
