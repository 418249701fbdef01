// @ suggestions in the composer: typing "@al" lists the room's members whose names start
// with "al" (GET /usernames/?room=…&q=al), then @room and @here where they match. ↑/↓ move,
// Enter or Tab takes the highlighted name, Esc closes; a click takes one too. The textarea
// is an ARIA combobox whose listbox is #mention-list, so screen readers hear the choices.
const WAIT_MS = 150;
const EVERYONE = [
  { name: "room", hint: "everyone in the room" },
  { name: "here", hint: "everyone connected now" },
];
// The "@word" being typed, ending at the caret: the same start as a mention on the server
// (formatting.MENTION_RE: not after a letter, digit, "@" or ".").
const TYPING_MENTION = /(?:^|[^\p{L}\p{N}_@.])@([\p{L}\p{N}_.+-]*)$/u;

// room(): the slug of the room on screen. Returns {key(event)}: true when the key was the
// suggestions' (the composer then leaves it alone).
export function setUpMentions({ input, list, room }) {
  let items = [];
  let active = -1;
  let timer = null;
  let asked = 0; // the latest request; older answers are dropped

  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");

  function typed() {
    if (input.selectionStart !== input.selectionEnd) return null;
    const match = TYPING_MENTION.exec(input.value.slice(0, input.selectionStart));
    return match ? { prefix: match[1], start: input.selectionStart - match[1].length - 1 } : null;
  }

  function close() {
    items = [];
    active = -1;
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  async function refresh() {
    const mention = typed();
    if (!mention) return close();
    const number = ++asked;
    const url = `/usernames/?room=${encodeURIComponent(room())}&q=${encodeURIComponent(mention.prefix)}`;
    let names = [];
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (response.ok) names = (await response.json()).usernames;
    } catch {
      // No member suggestions this time; @room and @here still show.
    }
    if (number !== asked) return;
    const prefix = mention.prefix.toLowerCase();
    const found = names.map((name) => ({ name, hint: "" }));
    found.push(...EVERYONE.filter(({ name }) => name.startsWith(prefix)));
    show(found);
  }

  function show(found) {
    items = found;
    list.replaceChildren(
      ...found.map(({ name, hint }, index) => {
        const option = document.createElement("li");
        option.id = `mention-option-${index}`;
        option.setAttribute("role", "option");
        option.textContent = `@${name}`;
        if (hint) {
          const note = document.createElement("span");
          note.className = "hint";
          note.textContent = ` ${hint}`;
          option.append(note);
        }
        // mousedown, not click: the textarea keeps its focus and caret.
        option.addEventListener("mousedown", (event) => {
          event.preventDefault();
          take(index);
        });
        return option;
      }),
    );
    list.hidden = found.length === 0;
    input.setAttribute("aria-expanded", String(found.length > 0));
    highlight(found.length ? 0 : -1);
  }

  function highlight(index) {
    active = index;
    list.querySelectorAll("[role=option]").forEach((option, i) => {
      option.setAttribute("aria-selected", String(i === index));
    });
    if (index >= 0) input.setAttribute("aria-activedescendant", `mention-option-${index}`);
    else input.removeAttribute("aria-activedescendant");
  }

  // Put "@name " in place of the "@prefix" being typed.
  function take(index) {
    const mention = typed();
    if (!mention || !items[index]) return close();
    const before = input.value.slice(0, mention.start);
    const after = input.value.slice(input.selectionStart);
    const inserted = `@${items[index].name} `;
    input.value = before + inserted + after;
    const caret = before.length + inserted.length;
    input.setSelectionRange(caret, caret);
    close();
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    if (!typed()) return close();
    timer = setTimeout(refresh, WAIT_MS);
  });
  input.addEventListener("blur", close);

  return {
    key(event) {
      if (list.hidden || items.length === 0 || event.isComposing) return false;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        const step = event.key === "ArrowDown" ? 1 : -1;
        highlight((active + step + items.length) % items.length);
      } else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") {
        take(active);
      } else if (event.key === "Escape") {
        close();
      } else {
        return false;
      }
      event.preventDefault();
      return true;
    },
    close,
  };
}
