// Launches Debian's Chromium headless for a test, with the flags this machine needs (no
// sandbox as root, no GPU, no background traffic to Google's hosts).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

export async function launch() {
  return chromium.launch({
    executablePath: process.env.AERIE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ],
  });
}

// Runs `scenario(input)` with the JSON input given as the first argument and prints what it
// returns as JSON on standard output; a failure prints its stack and exits 1.
export async function main(scenario) {
  try {
    const input = JSON.parse(process.argv[2]);
    const output = await scenario(input);
    process.stdout.write(JSON.stringify(output) + "\n");
  } catch (err) {
    process.stderr.write((err && err.stack) || String(err));
    process.stderr.write("\n");
    process.exit(1);
  }
}

// A full-page screenshot saved to `path`. Headless Chromium sometimes answers "Unable to
// capture screenshot" while another browser shares the machine's cores; a screenshot is an
// artifact, not a check, so it is tried again before failing.
export async function screenshot(page, path) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await page.screenshot({ path, fullPage: true });
    } catch (err) {
      if (attempt === 3) throw err;
      await page.waitForTimeout(250);
    }
  }
}

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

// axe-core's serious and critical violations on the page's own document as it is now (a
// framed plugin page is the plugin's, not Aerie's, so frames are left out).
export async function axe(page) {
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    const results = await window.axe.run(document, { resultTypes: ["violations"], iframes: false });
    return results.violations
      .filter((violation) => violation.impact === "serious" || violation.impact === "critical")
      .map((violation) => ({
        id: violation.id,
        impact: violation.impact,
        nodes: violation.nodes.slice(0, 5).map((node) => node.target.join(" ")),
      }));
  });
}

// A page in a context of its own that records its content-security-policy violations, and
// pushes onto `problems` what a page must never do: log an error or throw. Chromium logs a
// page answered with an error status (a 404 page, a refused form) as a failed load; those
// statuses are checked where they are expected. While `page.ignoringConsole` is set (a
// hostile plugin's page is framed, its blocked attempts filling the console, checked one by
// one from the frame instead), the console is not read.
export async function watchedPage(browser, problems, options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, ...options });
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (event) =>
      window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`));
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    const text = message.text();
    if (page.ignoringConsole) return;
    if (message.type() === "error" && !text.startsWith("Failed to load resource: the server responded with a status of")) {
      problems.push(`console: ${text} (${page.url()})`);
    }
  });
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message} (${page.url()})`));
  return page;
}

// Signs `page` in at `origin` through the sign-in form.
export async function signIn(page, origin, { username, password }) {
  await page.goto(origin + "/login");
  await page.fill("#username", username);
  await page.fill("#password", password);
  await submit(page, "form.stacked button[type=submit]");
}

// Clicks `target` (a selector or a locator) and waits until the page its form posts to has
// loaded, then until the address matches `where` when given; answers that page's response.
// Waiting for the address alone is not enough: a form that redirects back to the page it is
// on matches before it was sent.
export async function submit(page, target, where) {
  const answered = page.waitForResponse(
    (response) =>
      response.request().isNavigationRequest() &&
      response.frame() === page.mainFrame() &&
      (response.status() < 300 || response.status() >= 400),
  );
  const navigated = page.waitForEvent("framenavigated", (frame) => frame === page.mainFrame());
  await (typeof target === "string" ? page.click(target) : target.click());
  const [response] = await Promise.all([answered, navigated]);
  await page.waitForLoadState("load");
  if (where !== undefined) await page.waitForURL(where);
  return response;
}

// The checks every page visited gets: axe in the light and the dark theme, and the CSP
// violations it recorded, kept by page name in `accessibility` and `csp`.
export function pageChecks() {
  const accessibility = {};
  const csp = {};
  const check = async (page, name) => {
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      accessibility[`${name} (${scheme})`] = await axe(page);
    }
    await page.emulateMedia({ colorScheme: "light" });
    csp[name] = await page.evaluate(() => window.__cspViolations || []);
  };
  return { accessibility, csp, check };
}
