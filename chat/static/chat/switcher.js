// The room switcher (templates/chat/_switcher.html): Ctrl+K (⌘K) opens a modal dialog whose
// combobox (the ARIA 1.2 pattern: focus stays in the input, aria-activedescendant names the
// highlighted option) filters the rooms listed on the page. It reads the lists as sidebar.js
// keeps them, unread counts included, so it needs no state of its own; opening a room clicks
// its link, so the room page switches in place (sidebar.switchOnClick) and the lobby follows it.

// Where `query` is found in `name`: 0 at its start, 1 at a later word's start, 2 inside a
// word, null nowhere (both lower case).
export function matchRank(name, query) {
  if (name.startsWith(query)) return 0;
  let inside = false;
  for (let at = name.indexOf(query, 1); at !== -1; at = name.indexOf(query, at + 1)) {
    if (!/[\p{L}\p{N}]/u.test(name[at - 1])) return 1;
    inside = true;
  }
  return inside ? 2 : null;
}

// The rooms to offer for `query`, best first. Without a query: the rooms with unread messages
// (not muted) first, the room on screen last, the page's order otherwise; with one: those whose
// name matches, at its start, then a word's start, then anywhere (case-insensitive), each in
// the page's order. `rooms`: [{name, unread, muted, current}, ...] in the page's order.
export function rankRooms(rooms, query) {
  const wanted = query.trim().toLocaleLowerCase();
  const keyed = [];
  rooms.forEach((room, index) => {
    let rank;
    if (wanted) rank = matchRank(room.name.toLocaleLowerCase(), wanted);
    else rank = room.current ? 2 : room.unread > 0 && !room.muted ? 0 : 1;
    if (rank !== null) keyed.push({ room, rank, index });
  });
  keyed.sort((a, b) => a.rank - b.rank || a.index - b.index);
  return keyed.map(({ room }) => room);
}

const MAC = typeof navigator !== "undefined" && /mac|iphone|ipad/i.test(navigator.userAgentData?.platform || navigator.platform || "");

// Ctrl+K, or ⌘K on a Mac (either, anywhere: the Windows key never reaches the page).
function isShortcut(event) {
  return (event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && event.key.toLowerCase() === "k";
}

// The rooms on the page, in its order, once each: what the switcher offers.
function listed(selector) {
  const rooms = new Map();
  for (const li of document.querySelectorAll(selector)) {
    const link = li.querySelector("a");
    if (!link || rooms.has(li.dataset.room)) continue;
    const badge = li.querySelector(".badge.unread");
    rooms.set(li.dataset.room, {
      slug: li.dataset.room,
      name: link.textContent.trim(),
      link,
      unread: badge && !badge.hidden ? Number(badge.textContent) || 0 : 0,
      muted: li.dataset.notify === "mute",
      direct: "direct" in li.dataset,
      current: li.classList.contains("current"),
    });
  }
  return Array.from(rooms.values());
}

export function setUpSwitcher(dialog, opener) {
  const input = dialog.querySelector("[role=combobox]");
  const list = dialog.querySelector("[role=listbox]");
  const status = dialog.querySelector("[role=status]");
  const selector = dialog.dataset.items;
  let shown = [];
  let active = -1;
  let returnTo = null; // focused before opening: focus goes back there on closing

  function highlight(index) {
    active = index;
    list.querySelectorAll("[role=option]").forEach((option, at) => {
      option.setAttribute("aria-selected", String(at === index));
    });
    if (index < 0) {
      input.removeAttribute("aria-activedescendant");
      return;
    }
    const option = list.children[index];
    input.setAttribute("aria-activedescendant", option.id);
    option.scrollIntoView({ block: "nearest" });
  }

  function render() {
    shown = rankRooms(listed(selector), input.value);
    list.replaceChildren(...shown.map(optionFor));
    list.hidden = shown.length === 0;
    input.setAttribute("aria-expanded", String(shown.length > 0));
    if (shown.length) {
      status.textContent = shown.length === 1 ? "1 room" : `${shown.length} rooms`;
      status.classList.add("visually-hidden");
    } else {
      const query = input.value.trim();
      status.textContent = query ? `No room or person matches “${query}”.` : "You have no rooms yet.";
      status.classList.remove("visually-hidden");
    }
    highlight(shown.length ? 0 : -1);
  }

  function optionFor(room, index) {
    const option = document.createElement("li");
    option.id = `switcher-option-${index}`;
    option.setAttribute("role", "option");
    option.dataset.room = room.slug;
    if (room.muted) option.dataset.notify = "mute";
    const name = document.createElement("span");
    name.className = "switcher-name";
    name.textContent = room.name;
    option.append(name);
    const notes = [];
    if (room.direct) notes.push("direct message");
    if (room.current) notes.push("open now");
    if (notes.length) {
      const note = document.createElement("span");
      note.className = "switcher-note";
      note.textContent = notes.join(", ");
      option.append(" ", note);
    }
    if (room.unread) {
      const count = document.createElement("span");
      count.className = "badge unread";
      count.textContent = String(room.unread);
      const words = document.createElement("span");
      words.className = "visually-hidden";
      words.textContent = " unread";
      count.append(words);
      option.append(" ", count);
    }
    option.addEventListener("mousedown", (event) => event.preventDefault()); // focus stays in the input
    option.addEventListener("click", () => choose(index));
    return option;
  }

  function open() {
    if (dialog.open) return;
    returnTo = document.activeElement;
    input.value = "";
    render();
    dialog.showModal();
    input.focus();
  }

  // Open the room as its link would; the room page then puts focus in its composer.
  function choose(index) {
    const room = shown[index];
    if (!room) return;
    if (room.current) {
      dialog.close();
      return;
    }
    returnTo = null;
    dialog.close();
    room.link.click();
  }

  dialog.addEventListener("close", () => {
    if (returnTo && returnTo.isConnected) returnTo.focus();
    returnTo = null;
  });
  input.addEventListener("input", render);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      if (!shown.length) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      highlight((active + step + shown.length) % shown.length);
    } else if (event.key === "Enter" && !event.isComposing) {
      event.preventDefault();
      choose(active);
    }
  });
  dialog.querySelector("#switcher-close").addEventListener("click", () => dialog.close());
  // A click on the backdrop (outside the dialog's box) closes it, as Esc does.
  dialog.addEventListener("click", (event) => {
    if (event.target !== dialog) return;
    const box = dialog.getBoundingClientRect();
    const inside = event.clientX >= box.left && event.clientX <= box.right && event.clientY >= box.top && event.clientY <= box.bottom;
    if (!inside) dialog.close();
  });
  // Capture: before the composer's own keys (and the browser's Ctrl+K, its address bar).
  window.addEventListener(
    "keydown",
    (event) => {
      if (!isShortcut(event)) return;
      event.preventDefault();
      if (dialog.open) dialog.close();
      else open();
    },
    true,
  );
  if (opener) {
    if (MAC) {
      opener.setAttribute("aria-keyshortcuts", "Meta+K");
      opener.querySelector("kbd").textContent = "⌘K";
    }
    opener.addEventListener("click", open);
    opener.hidden = false;
  }
}

if (typeof document !== "undefined") {
  const dialog = document.getElementById("switcher");
  if (dialog) setUpSwitcher(dialog, document.getElementById("switcher-open"));
}
