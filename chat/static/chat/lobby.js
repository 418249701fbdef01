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
    },
  },
});
for (const [slug, li] of items) client.watch(slug, Number(li.dataset.lastSeq), { quiet: true });
socket = keepOpen(client);
