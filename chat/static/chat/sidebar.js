// Lists of rooms with live counts (templates/chat/_room_list.html): the lobby's and the room
// page's sidebar. Reads what the server rendered into each item and shows what RoomCounts
// (counts.js) knows.

// The items of `selector`, by slug, in page order: the first `max` distinct rooms (the socket
// follows no more).
export function roomItems(selector, max) {
  const items = new Map();
  for (const li of document.querySelectorAll(selector)) {
    if (!items.has(li.dataset.room) && items.size < max) items.set(li.dataset.room, li);
  }
  return items;
}

// The rooms as RoomCounts takes them, from the items' data attributes.
export function listedRooms(items) {
  return Array.from(items.values(), (li) => ({
    slug: li.dataset.room,
    lastSeq: Number(li.dataset.lastSeq),
    read: li.dataset.read === "" ? null : Number(li.dataset.read),
    unread: Number(li.dataset.unread),
  }));
}

// How many are online, in a sidebar: one number.
export function onlineTotal({ users, guests }) {
  return users + guests ? String(users + guests) : "";
}

// How many are online, in the lobby: "3 online · 1 guest".
export function onlineInWords({ users, guests }) {
  const parts = [];
  if (users) parts.push(`${users} online`);
  if (guests) parts.push(guests === 1 ? "1 guest" : `${guests} guests`);
  return parts.join(" · ");
}

// Show a room's unread badge and online count.
export function renderCounts(li, counts, slug, describeOnline) {
  const unread = counts.unread(slug);
  const badge = li.querySelector(".unread");
  badge.textContent = String(unread);
  badge.hidden = unread === 0;
  const online = li.querySelector(".online-count");
  const text = describeOnline(counts.online(slug));
  online.textContent = text;
  if (text && describeOnline === onlineTotal) {
    // A bare number beside the name: say what it counts to screen readers (aria-label is
    // not allowed on a <span>).
    const words = document.createElement("span");
    words.className = "visually-hidden";
    words.textContent = " online";
    online.append(words);
  }
}

export function markCurrent(items, slug) {
  for (const [other, li] of items) {
    const here = other === slug;
    li.classList.toggle("current", here);
    const link = li.querySelector("a");
    if (here) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

export function markClosed(items, slug) {
  const li = items.get(slug);
  if (li) li.classList.add("closed");
}

// Links switch the view in place when switchTo(slug) can; a modified click still opens a
// new tab.
export function switchOnClick(items, switchTo) {
  for (const [slug, li] of items) {
    li.querySelector("a").addEventListener("click", (event) => {
      if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      if (switchTo(slug)) event.preventDefault();
    });
  }
}

// A new item for a room the user joined in another tab, or a direct message made with them
// (as _room_list.html renders one).
export function newItem({ room, name, private: isPrivate, direct, notify, owner, people, last_seq: lastSeq, read, unread }) {
  const li = document.createElement("li");
  li.dataset.room = room;
  li.dataset.lastSeq = String(lastSeq);
  li.dataset.read = read === null ? "" : String(read);
  li.dataset.unread = String(unread);
  if (isPrivate) li.dataset.private = "";
  if (direct) li.dataset.direct = "";
  if (owner) li.dataset.owner = "";
  if (direct && typeof people === "number") li.dataset.people = String(people);
  const link = document.createElement("a");
  link.href = `/chat/${room}/`;
  link.textContent = name;
  li.append(link);
  if (isPrivate && !direct) li.append(badge("badge", "private"));
  const count = badge("badge unread", String(unread));
  count.title = "unread messages";
  count.hidden = unread === 0;
  const online = badge("online-count", "");
  li.append(count, online);
  setNotify(li, notify);
  return li;
}

export function badge(className, text) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}

// Mark an item starred or not (the star badge, as _room_list.html renders it).
export function setStarred(li, starred) {
  let star = li.querySelector(".starred");
  if (starred && !star) {
    star = badge("badge starred", "★");
    star.title = "starred";
    li.querySelector("a").after(star);
  } else if (!starred && star) {
    star.remove();
  }
  if (starred) li.dataset.starred = "";
  else delete li.dataset.starred;
}

// Mark what of the room notifies the user ("all", "mentions", "mute"; null: not a member):
// a muted room shows a quiet "muted" badge (and dims, chat.css), as _room_list.html renders.
export function setNotify(li, notify) {
  if (notify) li.dataset.notify = notify;
  else delete li.dataset.notify;
  let mark = li.querySelector(".badge.muted");
  if (notify === "mute" && !mark) {
    mark = badge("badge muted", "muted");
    mark.title = "notifications muted";
    li.querySelector(".unread").before(mark);
  } else if (notify !== "mute" && mark) {
    mark.remove();
  }
}

// Mark an item as a room the user owns, or not (its settings are theirs to open).
export function setOwner(li, owner) {
  if (owner) li.dataset.owner = "";
  else delete li.dataset.owner;
}

// Put `li` where the server would list it: starred first, then by name.
export function placeItem(list, li) {
  const key = (item) => ["starred" in item.dataset ? 0 : 1, item.querySelector("a").textContent];
  const [star, name] = key(li);
  for (const other of list.children) {
    if (other === li) continue;
    const [otherStar, otherName] = key(other);
    if (star < otherStar || (star === otherStar && name.localeCompare(otherName) < 0)) {
      list.insertBefore(li, other);
      return;
    }
  }
  list.append(li);
}

// The list `id` of the sidebar `nav`, made (under its heading) if the page had none: the
// "Direct messages" list appears with the first direct message.
export function listIn(nav, id, heading) {
  let list = document.getElementById(id);
  if (!list) {
    const title = document.createElement("h2");
    title.textContent = heading;
    list = document.createElement("ul");
    list.className = "room-list";
    list.id = id;
    nav.append(title, list);
  }
  return list;
}
