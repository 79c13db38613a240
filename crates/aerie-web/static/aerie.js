// Search answers as you type. The page works the same without this script: the form submits
// and the server renders the results. With it, the results part of the page is fetched and
// swapped in, and the address bar follows, so every state stays a shareable URL.
const form = document.querySelector("form[data-instant-search]");
if (form) {
  const results = document.getElementById("results");
  let pending = null;
  let timer = 0;
  const refresh = async () => {
    const url = `${form.action}?${new URLSearchParams(new FormData(form))}`;
    pending?.abort();
    pending = new AbortController();
    try {
      const response = await fetch(url, { signal: pending.signal, headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById("results");
      if (!fresh) return;
      results.replaceChildren(...fresh.childNodes);
      history.replaceState(null, "", url);
    } catch (err) {
      if (err.name !== "AbortError") throw err;
    }
  };
  form.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  });
  form.querySelector("select")?.addEventListener("change", () => {
    clearTimeout(timer);
    refresh();
  });
}
