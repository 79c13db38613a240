// What a first visit costs: for each page, the bytes transferred (documents, styles, scripts,
// images: everything the browser fetched, headers included, with an empty cache) and the time
// from navigation start until the page shows a given text (its list). For the web UI
// benchmark (bench/web-pages.sh), which runs it against Aerie and a peer in the same run.
//
// Input: { pages: [{ name, url, shows }], runs }: `shows` is a text the page shows once its
// list is on screen. Prints, per page, the median over `runs` fresh browser contexts.
import { launch, main } from "./chromium.mjs";

main(async ({ pages, runs }) => {
  const browser = await launch();
  const results = [];
  try {
    for (const { name, url, shows } of pages) {
      const samples = [];
      for (let run = 0; run < runs; run++) {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await context.newPage();
        const client = await context.newCDPSession(page);
        await client.send("Network.enable");
        await client.send("Network.setCacheDisabled", { cacheDisabled: true });
        let bytes = 0;
        let requests = 0;
        client.on("Network.loadingFinished", (event) => {
          bytes += event.encodedDataLength;
          requests += 1;
        });
        const started = Date.now();
        await page.goto(url, { waitUntil: "commit" });
        await page.getByText(shows, { exact: false }).first().waitFor({ state: "visible" });
        const shown = Date.now() - started;
        await page.waitForLoadState("networkidle");
        samples.push({ bytes, requests, shown });
        await context.close();
      }
      const median = (key) => samples.map((sample) => sample[key]).sort((a, b) => a - b)[Math.floor(samples.length / 2)];
      results.push({ name, url, bytes: median("bytes"), requests: median("requests"), shown_ms: median("shown") });
    }
    return results;
  } finally {
    await browser.close();
  }
});
