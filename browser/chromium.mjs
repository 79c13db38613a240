// Launches Debian's Chromium headless for a test, with the flags this machine needs (no
// sandbox as root, no GPU, no background traffic to Google's hosts).
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
