// What the page knows of people's profiles (display name, status, time zone, avatar), asked
// of GET /people/profiles/?u=…&u=… (signed-in viewers only) and kept by username. The
// online list shows the statuses it has; the profile card asks afresh each time it opens.
// DOM-free (tests/js/people.test.js).
const AT_ONCE = 50; // the server answers at most this many names per request

// "14:05": the time now in the IANA zone `timeZone`, as the viewer's locale writes it;
// "" if the zone is unset or unknown to this browser.
export function localTime(timeZone, now = new Date(), locales = []) {
  if (!timeZone) return "";
  try {
    return new Intl.DateTimeFormat(locales, { hour: "2-digit", minute: "2-digit", timeZone }).format(now);
  } catch {
    return "";
  }
}

export class Profiles {
  // url: the endpoint (null: nothing is asked, e.g. an anonymous viewer); onChange(names):
  // runs after profiles arrive; fetchJson: for tests.
  constructor({ url, onChange = () => {}, fetchJson = defaultFetchJson }) {
    this.url = url;
    this.onChange = onChange;
    this.fetchJson = fetchJson;
    this.known = new Map(); // username → profile (null: no such active user)
    this.asking = new Set();
  }

  // Whether the page asked for them (their profile may be shown).
  knows(name) {
    return this.known.has(name);
  }

  get(name) {
    return this.known.get(name) || undefined;
  }

  status(name) {
    const profile = this.get(name);
    return profile ? profile.status : "";
  }

  // Ask for those of `names` not known or asked yet (the online list's).
  want(names) {
    return this.load(names.filter((name) => !this.known.has(name) && !this.asking.has(name)));
  }

  // Ask again, whatever is known (a card opening; someone coming online).
  refresh(names) {
    return this.load(names.filter((name) => !this.asking.has(name)));
  }

  async load(names) {
    if (!this.url || names.length === 0) return;
    const batches = [];
    for (let i = 0; i < names.length; i += AT_ONCE) batches.push(names.slice(i, i + AT_ONCE));
    names.forEach((name) => this.asking.add(name));
    try {
      await Promise.all(
        batches.map(async (batch) => {
          const query = batch.map((name) => `u=${encodeURIComponent(name)}`).join("&");
          const body = await this.fetchJson(`${this.url}?${query}`);
          for (const name of batch) this.known.set(name, (body && body.profiles[name]) || null);
        }),
      );
    } catch {
      return; // asked again next time
    } finally {
      names.forEach((name) => this.asking.delete(name));
    }
    this.onChange(names);
  }
}

async function defaultFetchJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${response.status}`);
  return response.json();
}
