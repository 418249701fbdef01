// Who is in the room on screen: the online list (#online) and the typing line (#typing).
const TYPING_SHOW_FOR_MS = 5000;

// `room`: RoomCounts' record of the room (undefined: nothing known yet); `statusOf(name)`:
// the status someone set (people.js), shown under their name.
// The list is drawn anew on every change in the room (someone comes or goes, a guest, a
// status), so the person the keyboard is on is carried over to their new button: otherwise
// focus would fall to the page, and Enter would do nothing.
export function renderOnline(ul, room, statusOf = () => "") {
  const active = ul.ownerDocument.activeElement;
  const focused = ul.contains(active) && active.matches(".person") ? active.textContent : null;
  const names = room ? Array.from(room.online).sort() : [];
  const items = names.map((name) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "person";
    button.setAttribute("aria-haspopup", "dialog");
    button.setAttribute("aria-expanded", "false");
    button.textContent = name;
    li.append(button);
    const status = statusOf(name);
    if (status) {
      const note = document.createElement("span");
      note.className = "presence-status";
      note.textContent = status;
      li.append(note);
    }
    return li;
  });
  const guests = room ? room.guests : 0;
  if (guests) {
    const li = document.createElement("li");
    li.className = "guests";
    li.textContent = guests === 1 ? "1 guest" : `${guests} guests`;
    items.push(li);
  }
  ul.replaceChildren(...items);
  if (focused !== null) {
    const again = Array.from(ul.querySelectorAll(".person")).find((b) => b.textContent === focused);
    again?.focus({ preventScroll: true });
  }
}

export function renderTyping(el, view) {
  const names = Array.from(view.typists.keys()).sort();
  if (names.length === 0) el.textContent = "";
  else if (names.length === 1) el.textContent = `${names[0]} is typing…`;
  else if (names.length === 2) el.textContent = `${names[0]} and ${names[1]} are typing…`;
  else el.textContent = "Several people are typing…";
}

// `name` is typing in `view`: shown for a few seconds unless they type again. changed()
// runs whenever the view's typists change.
export function startTyping(view, name, changed) {
  clearTimeout(view.typists.get(name));
  view.typists.set(name, setTimeout(() => stopTyping(view, name, changed), TYPING_SHOW_FOR_MS));
  changed();
}

export function stopTyping(view, name, changed) {
  const timer = view.typists.get(name);
  if (timer === undefined) return;
  clearTimeout(timer);
  view.typists.delete(name);
  changed();
}
