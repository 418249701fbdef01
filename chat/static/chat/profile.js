// The profile card: a name (a message's author, an entry of the online list) is a button that
// opens a small card saying who it is, whether they are online, and, for a signed-in viewer,
// their display name, status and local time (asked afresh as it opens: people.js) and a
// "Message" link to the direct message with them. Built with DOM APIs (user text only
// through textContent). Esc or a click elsewhere closes it; Esc gives focus back to the name,
// or, when that name is no longer on the page, to the list or part of the page it was in.
import { localTime } from "./people.js";

const nameOf = (button) => button.dataset.username || button.textContent.trim();

export class ProfileCard {
  // me: the viewer's username (null: anonymous, who gets no "Message");
  // isOnline(name): whether the page knows them online; profiles: a people.js Profiles.
  constructor({ me, isOnline, profiles = null }) {
    this.me = me;
    this.isOnline = isOnline;
    this.profiles = profiles;
    this.trigger = null;
    this.name = null;
    this.home = null; // where the trigger was (`listen`'s root): focus goes there if it is gone
    this.list = null; // the trigger's list, if it is one drawn anew (`listen`'s `redrawn`)
    this.follower = new MutationObserver(() => this.follow());
    this.card = document.createElement("div");
    this.card.className = "profile-card";
    this.card.id = "profile-card";
    this.card.setAttribute("role", "dialog");
    this.card.setAttribute("aria-labelledby", "profile-card-name");
    this.card.hidden = true;
    this.card.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        event.preventDefault();
        this.close({ refocus: true });
      }
    });
    document.body.append(this.card);
    document.addEventListener("click", (event) => {
      if (this.card.hidden || this.card.contains(event.target)) return;
      if (this.trigger && this.trigger.contains(event.target)) return;
      this.close({ refocus: false });
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !this.card.hidden) this.close({ refocus: true });
    });
  }

  // Name buttons (`button.person`) anywhere inside `root`, now or later, open the card.
  // `redrawn`: `root` is a list of names, each once, that is drawn anew while a card may be
  // open (the online list is, on every change in the room): the card follows its person.
  listen(root, { redrawn = false } = {}) {
    root.addEventListener("click", (event) => {
      const button = event.target.closest("button.person");
      if (!button || !root.contains(button)) return;
      if (this.trigger === button && !this.card.hidden) this.close({ refocus: true });
      else this.open(button, nameOf(button), { home: root, redrawn });
    });
  }

  open(trigger, name, { home = null, redrawn = false } = {}) {
    if (this.trigger) this.trigger.setAttribute("aria-expanded", "false");
    this.name = name;
    this.home = home;
    this.list = redrawn ? home : null;
    this.follower.disconnect();
    if (this.list) this.follower.observe(this.list, { childList: true, subtree: true });
    this.opened(trigger);
    const title = document.createElement("p");
    title.className = "profile-name";
    title.id = "profile-card-name";
    title.textContent = name;
    const details = document.createElement("div");
    details.className = "profile-details";
    const online = this.isOnline(name);
    const status = document.createElement("p");
    status.className = "profile-status";
    status.dataset.online = String(online);
    status.textContent = online ? "Online" : "Not online";
    const actions = document.createElement("p");
    actions.className = "profile-actions";
    if (this.me && name !== this.me) {
      const message = document.createElement("a");
      message.className = "button profile-message";
      message.href = `/chat/@${encodeURIComponent(name)}/`;
      message.textContent = "Message";
      actions.append(message);
    }
    const close = document.createElement("button");
    close.type = "button";
    close.className = "link profile-close";
    close.textContent = "Close";
    close.addEventListener("click", () => this.close({ refocus: true }));
    actions.append(close);
    this.card.replaceChildren(title, details, status, actions);
    this.card.hidden = false;
    this.place(trigger);
    actions.firstElementChild.focus();
    if (!this.profiles) return;
    this.fillDetails(details, name);
    this.profiles.refresh([name]).then(() => {
      if (details.isConnected) this.fillDetails(details, name); // still this opening's card
    });
  }

  opened(trigger) {
    this.trigger = trigger;
    trigger.setAttribute("aria-expanded", "true");
    trigger.setAttribute("aria-controls", this.card.id);
  }

  // The card's list was drawn anew: its person's new button is the card's from now on (it
  // says the card is open, Esc gives focus back to it, the card is placed below it). Someone
  // no longer in the list leaves the card where it was, until it closes.
  follow() {
    if (this.card.hidden || !this.list || this.trigger?.isConnected) return;
    const again = Array.from(this.list.querySelectorAll("button.person")).find(
      (button) => nameOf(button) === this.name,
    );
    if (!again) return;
    this.opened(again);
    this.place(again);
  }

  // What they say of themselves: display name, status, avatar, and the time where they are.
  fillDetails(details, name) {
    const profile = this.profiles.get(name);
    if (!profile) return;
    const parts = [];
    if (profile.avatar) {
      const img = document.createElement("img");
      img.className = "avatar profile-avatar";
      img.alt = "";
      img.width = img.height = 48;
      img.src = profile.avatar;
      parts.push(img);
    }
    const line = (className, text) => {
      const p = document.createElement("p");
      p.className = className;
      p.textContent = text;
      parts.push(p);
      return p;
    };
    if (profile.display_name && profile.display_name !== name) line("profile-display", profile.display_name);
    if (profile.status) line("profile-note", profile.status);
    const time = localTime(profile.time_zone);
    if (time) line("profile-time", `${time} local time`).title = profile.time_zone;
    details.replaceChildren(...parts);
    this.place(this.trigger);
  }

  // Below the name, kept inside the window (CSSOM: the policy allows no style attribute).
  // A button no longer in the page leaves the card where it was: it has no place (it would
  // put the card in the page's top corner, away from a click meant for it).
  place(trigger) {
    if (!trigger.isConnected) return;
    const box = trigger.getBoundingClientRect();
    const width = this.card.offsetWidth;
    const left = Math.max(8, Math.min(box.left, document.documentElement.clientWidth - width - 8));
    this.card.style.left = `${left + window.scrollX}px`;
    this.card.style.top = `${box.bottom + window.scrollY + 4}px`;
  }

  close({ refocus }) {
    if (this.card.hidden) return;
    this.card.hidden = true;
    this.card.replaceChildren();
    this.follower.disconnect();
    const trigger = this.trigger;
    const home = this.home;
    this.trigger = this.home = null;
    if (!trigger) return;
    trigger.setAttribute("aria-expanded", "false");
    if (!refocus) return;
    if (trigger.isConnected) {
      trigger.focus();
    } else if (home?.isConnected) {
      // Their name left the page (they went offline, the list was drawn without them): the
      // keyboard goes on from where it was, not from the top of the page.
      if (!home.hasAttribute("tabindex")) home.tabIndex = -1;
      home.focus();
    }
  }
}
