// The lobby: each listed room's online count and the user's unread count, live, and the list
// itself, live. The socket follows the rooms quietly (a quiet join is not counted online) from
// the last seq the page showed, so it hears new messages, presence and read marks without
// fetching old messages; and what changes the list: a room made or un-archived anywhere
// (`room_opened`: public ones reach every socket, private ones their members'), archived
// (`room_closed`), renamed (`room_updated`), or joined or left on another tab (`membership`).
import { RoomCounts } from "./counts.js";
import { badge, listedRooms, newItem, onlineInWords, renderCounts, roomItems } from "./sidebar.js";
import { ChatClient } from "./sync.js";
import { keepOpen } from "./transport.js";

const config = JSON.parse(document.getElementById("lobby-config").textContent);
const el = {
  rooms: document.getElementById("room-list"),
  empty: document.getElementById("rooms-empty"),
  directs: document.getElementById("direct-list"),
  directsCard: document.getElementById("directs"),
};
const items = roomItems("li[data-room]", config.maxRooms); // the rooms the socket follows
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
      else if (frame.type in handlers) handlers[frame.type](frame);
    },
  },
});

const handlers = {
  room_updated: renamed,
  room_opened: opened,
  room_closed: (frame) => drop(frame.room), // archived: no longer listed
  removed(frame) {
    // Out of a private room (or it was made private): the user may no longer see it.
    const li = itemOf(frame.room);
    if (li && "private" in li.dataset) drop(frame.room);
  },
  membership: membershipChanged,
};

// The listed item of a room, followed or not.
function itemOf(slug) {
  if (items.has(slug)) return items.get(slug);
  for (const li of document.querySelectorAll("li[data-room]")) if (li.dataset.room === slug) return li;
  return null;
}

const nameOf = (li) => li.querySelector("a").textContent;
// The user's own rooms this page does not list, as their `membership` frames said: a room
// they made here is announced to them before it is announced to all (`room_opened`).
const unlisted = new Map();

// A room's owners renamed it or changed its topic.
function renamed({ room, name, topic }) {
  const li = itemOf(room);
  if (!li) return;
  li.querySelector("a").textContent = name;
  setTopic(li, topic);
}

function setTopic(li, topic) {
  let shown = li.querySelector(".topic");
  if (!shown && topic && li.parentElement !== el.directs) {
    shown = badge("topic", "");
    li.append(shown);
  }
  if (shown) shown.textContent = topic;
}

function setMembers(li, members) {
  let shown = li.querySelector(".member-count");
  if (!shown) {
    shown = badge("member-count", "");
    li.querySelector(".unread").before(shown);
  }
  shown.textContent = members === 1 ? "1 member" : `${members} members`;
}

// The "joined" mark (as _room_list.html renders it, after the member count).
function setJoined(li, joined) {
  let mark = li.querySelector(".joined");
  if (joined && !mark) {
    mark = badge("badge joined", "joined");
    li.querySelector(".unread").before(mark);
  } else if (!joined && mark) {
    mark.remove();
  }
}

// A room made or un-archived: listed where a reload would list it, if at all.
function opened(frame) {
  const li = itemOf(frame.room);
  if (li) {
    renamed(frame);
    if (li.parentElement === el.rooms) setMembers(li, frame.members);
    return;
  }
  if (frame.direct) {
    addDirect({ ...frame, read: null, unread: 0 });
    return;
  }
  // A private room's frame reaches its members alone; a public one's, whoever joined it too.
  const mine = unlisted.get(frame.room) || (frame.private ? {} : null);
  const read = mine && typeof mine.read === "number" ? mine.read : null;
  const unread = read === null ? 0 : mine.unread;
  const added = add({ ...frame, member: Boolean(mine), read, unread });
  if (added) setMembers(added, frame.members);
}

// The user joined or left a room (or starred it, or owners changed) on any tab, was invited
// to or made a private room, or a direct message with them was made.
function membershipChanged(frame) {
  if (frame.direct) {
    if (frame.member && !itemOf(frame.room)) addDirect(frame);
    return;
  }
  const li = itemOf(frame.room);
  if (!frame.member) unlisted.delete(frame.room);
  else if (!li) unlisted.set(frame.room, frame);
  if (li && !frame.member && frame.private) {
    drop(frame.room); // they may no longer see it
  } else if (li) {
    if (li.parentElement === el.rooms) setJoined(li, frame.member);
    counts.membership(frame);
  } else if (frame.member && frame.private) {
    add(frame); // a private room appears in the lobby of its members only
  }
}

// List a room of the lobby's list, in name order, if it belongs on this page of this search;
// returns its item, or null.
function add(frame) {
  if (config.query && !frame.name.toLowerCase().includes(config.query.toLowerCase())) return null;
  const li = newItem(frame);
  setJoined(li, frame.member);
  setTopic(li, frame.topic || "");
  unlisted.delete(frame.room);
  const others = Array.from(el.rooms.children);
  const next = others.find((other) => frame.name.localeCompare(nameOf(other)) < 0);
  if (next === others[0] && others.length && !config.firstPage) return null; // an earlier page
  if (!next && !config.lastPage) return null; // a later page
  el.rooms.insertBefore(li, next || null);
  // A full page pushes its last room onto the next one, as a reload would.
  while (el.rooms.children.length > config.pageSize) drop(el.rooms.lastElementChild.dataset.room);
  if (li.parentElement !== el.rooms) return null;
  if (el.empty) el.empty.hidden = true;
  follow(li, frame);
  return li;
}

// A direct message with the user: listed with theirs, by name.
function addDirect(frame) {
  const li = newItem(frame);
  const next = Array.from(el.directs.children).find((other) => frame.name.localeCompare(nameOf(other)) < 0);
  el.directs.insertBefore(li, next || null);
  el.directsCard.hidden = false;
  follow(li, frame);
}

// Count the room live, as the page's own rooms are, while the socket may follow one more.
function follow(li, frame) {
  if (items.size >= config.maxRooms) return;
  items.set(frame.room, li);
  counts.add({ slug: frame.room, lastSeq: frame.last_seq, read: frame.read, unread: frame.unread });
  client.watch(frame.room, frame.last_seq, { quiet: true });
  renderCounts(li, counts, frame.room, onlineInWords);
}

// No longer listed (archived, out of reach, or pushed onto the next page).
function drop(slug) {
  const li = itemOf(slug);
  if (!li) return;
  li.remove();
  if (li.querySelector(".joined")) unlisted.set(slug, {}); // still theirs, if it comes back
  if (items.delete(slug)) {
    client.unwatch(slug);
    counts.rooms.delete(slug);
  }
  if (el.empty && el.rooms.children.length === 0) el.empty.hidden = false;
  if (el.directs.children.length === 0) el.directsCard.hidden = true;
}

for (const [slug, li] of items) client.watch(slug, Number(li.dataset.lastSeq), { quiet: true });
socket = keepOpen(client);
