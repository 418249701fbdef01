// Username suggestions for a text field: its <datalist> (the field's `list`) is filled from
// GET data-suggest?q=<prefix>. A field that takes several names (data-several) suggests for
// the last one typed, keeping those before it. The forms work without it. A module script
// runs after the page is parsed, so a name typed before it attached is suggested for at once.
const WAIT_MS = 200;

export function suggestUsernames(input) {
  const list = input.list;
  if (!list || !input.dataset.suggest) return;
  let timer = null;
  let asked = "";

  async function suggest() {
    const typed = input.value;
    const several = "several" in input.dataset;
    const cut = several ? Math.max(typed.lastIndexOf(","), typed.lastIndexOf(" ")) + 1 : 0;
    const before = typed.slice(0, cut);
    const prefix = typed.slice(cut).trim();
    if (!prefix || typed === asked) return;
    asked = typed;
    const url = `${input.dataset.suggest}?q=${encodeURIComponent(prefix)}`;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" } });
      if (!response.ok || typed !== input.value) return;
      const { usernames } = await response.json();
      list.replaceChildren(
        ...usernames.map((name) => {
          const option = document.createElement("option");
          option.value = before + name;
          return option;
        }),
      );
    } catch {
      // No suggestions this time; the field still takes any name.
    }
  }

  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(suggest, WAIT_MS);
  };
  input.addEventListener("input", later);
  if (input.value) later();
}
