// A room's settings page: suggests usernames for the invite field (a <datalist> filled from
// GET /usernames/?q=…). The page works without it: the forms are plain forms.
const input = document.getElementById("invite-username");
const list = document.getElementById("invite-suggestions");
const WAIT_MS = 200;
let timer = null;
let asked = "";

async function suggest() {
  const prefix = input.value.trim();
  if (!prefix || prefix === asked) return;
  asked = prefix;
  const url = `${input.dataset.suggest}?q=${encodeURIComponent(prefix)}`;
  try {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok || prefix !== input.value.trim()) return;
    const { usernames } = await response.json();
    list.replaceChildren(
      ...usernames.map((name) => {
        const option = document.createElement("option");
        option.value = name;
        return option;
      }),
    );
  } catch {
    // No suggestions this time; the field still takes any name.
  }
}

if (input && list) {
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, WAIT_MS);
  });
}
