// What the composer keeps and says about its text: a draft per user and room, kept in the
// tab's sessionStorage (it survives reloads and room switches; it does not outlive the tab,
// so a shared computer keeps no one's unsent words after they close it), a character count
// near the limit, and how much of a paste the limit cut off.

// Shown once the text is past this share of the limit.
export const COUNT_FROM = 0.9;

export function draftKey(user, slug) {
  return `chat.draft.${user}.${slug}`;
}

// "3,812 / 4,000" once `length` is past COUNT_FROM of `max`; "" below it.
export function countText(length, max) {
  if (!max || length <= max * COUNT_FROM) return "";
  return `${length.toLocaleString("en-US")} / ${max.toLocaleString("en-US")}`;
}

// How many characters of `pasted` a box holding `length` characters, `selected` of them
// selected (the paste replaces them), cannot take under `max`: 0 if it all fits. Line breaks
// count once, as the box stores them.
export function pasteOverflow({ length, selected, pasted, max }) {
  const incoming = pasted.replace(/\r\n?/g, "\n").length;
  return Math.max(0, length - selected + incoming - max);
}

// Drafts of `user` (null: none are kept) in `storage` (window.sessionStorage); a failing
// storage (full, or off) keeps nothing and breaks nothing.
export class Drafts {
  constructor({ user, storage }) {
    this.user = user;
    this.storage = storage;
  }

  get(slug) {
    if (!this.user || !this.storage) return "";
    try {
      return this.storage.getItem(draftKey(this.user, slug)) || "";
    } catch {
      return "";
    }
  }

  // An empty text removes the draft.
  set(slug, text) {
    if (!this.user || !this.storage) return;
    try {
      if (text) this.storage.setItem(draftKey(this.user, slug), text);
      else this.storage.removeItem(draftKey(this.user, slug));
    } catch {
      // Storage full or refused: the draft lives only in the box.
    }
  }
}
