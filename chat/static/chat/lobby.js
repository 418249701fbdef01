// The lobby: each listed room's online count and the user's unread count, live. The socket
// follows the rooms quietly (a quiet join is not counted online) from the last seq the page
// showed, so it hears new messages, presence and read marks without fetching old messages.
import { RoomCounts } from "./counts.js";
import { listedRooms, onlineInWords, renderCounts, roomItems } from "./sidebar.js";
import { ChatClient } from "./sync.js";
import { keepOpen } from "./transport.js";

const config = JSON.parse(document.getElementById("lobby-config").textContent);
const items = roomItems("li[data-room]", config.maxRooms);
const counts = new RoomCounts({
  username: config.username,
  rooms: listedRooms(items),
  render(slug) {
    if (items.has(slug)) renderCounts(items.get(slug), counts, slug, onlineInWords);
  },
});
const FRAMES = new Set(["presence", "guests", "read"]);

let socket = null;
const client = new ChatClient({
  send: (frame) => socket !== null && socket.send(frame),
  view: {
    joined: (frame) => counts.joined(frame),
    message: (room, msg) => counts.message(room, msg),
    frame(frame) {
      if (FRAMES.has(frame.type)) counts[frame.type](frame);
      else if (frame.type === "room_updated") renamed(frame);
    },
  },
});
// A room's owners renamed it or changed its topic.
function renamed({ room, name, topic }) {
  const li = items.get(room);
  if (!li) return;
  li.querySelector("a").textContent = name;
  const shown = li.querySelector(".topic");
  if (shown) shown.textContent = topic;
}

for (const [slug, li] of items) client.watch(slug, Number(li.dataset.lastSeq), { quiet: true });
socket = keepOpen(client);
