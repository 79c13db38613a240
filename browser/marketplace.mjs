// A newcomer uses the marketplace in Chromium: signs up, searches with a typo as they type,
// judges a plugin by its page and tabs, reviews it, switches the theme, manages their
// sessions; the same flows again with JavaScript off. Every page is checked with axe-core
// (no serious or critical violation) in the light and the dark theme, no page may trip its
// content security policy or throw, and the main pages are photographed at desktop and phone
// sizes in both themes.
//
// Input: { base, plugin, typo, username, password, new_password, artifacts }: the server's
// origin, a published plugin (`namespace/name`) and a misspelling of its name, an account to
// create, and where to save screenshots. Prints what it saw.
import { mkdirSync } from "node:fs";
import { axe, launch, main, pageChecks, screenshot, submit, watchedPage } from "./chromium.mjs";

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

main(async ({ base, plugin, typo, username, password, new_password, artifacts }) => {
  mkdirSync(artifacts, { recursive: true });
  const browser = await launch();
  const problems = [];
  const { accessibility, csp, check: checkPage } = pageChecks();
  try {
    const page = await watchedPage(browser, problems, { viewport: DESKTOP });
    const seen = {};

    // Every page visited is checked in both themes and for CSP violations.
    const check = (name) => checkPage(page, name);
    const visit = async (name, path) => {
      const response = await page.goto(base + path);
      await check(name);
      return response;
    };

    // Home, as a visitor.
    const home = await visit("home", "/");
    seen.home = {
      status: home.status(),
      headers: home.headers(),
      title: await page.title(),
      shelves: await page.locator(".shelf h2").allTextContents(),
      lists_plugin: await page.locator(`.card a[href="/plugins/${plugin}"]`).count(),
    };

    // Keyboard: the first Tab reaches the skip link, which shows its focus.
    await page.keyboard.press("Tab");
    seen.keyboard = await page.evaluate(() => {
      const element = document.activeElement;
      return {
        first: element.className,
        outline: getComputedStyle(element).outlineStyle,
      };
    });

    // Sign up.
    await visit("signup", "/signup");
    await page.fill("#username", username);
    await page.fill("#password", password);
    await submit(page, "form.stacked button[type=submit]", "**/account");
    seen.signed_up = { url: page.url(), user: await page.locator(".account-nav a[href='/account']").textContent() };

    // Search as you type, with a typo: results change without the page reloading.
    await visit("search", "/search");
    await page.evaluate(() => { window.__samePage = true; });
    await page.fill("#q", typo);
    await page.waitForURL((url) => url.search.includes(`q=${typo}`));
    await page.locator(`#results .card a[href="/plugins/${plugin}"]`).waitFor();
    seen.instant_search = {
      same_page: await page.evaluate(() => window.__samePage === true),
      url: page.url(),
      summary: await page.locator("#summary").textContent(),
    };
    await check("search results");

    // The plugin page and its tabs.
    await page.click(`#results .card a[href="/plugins/${plugin}"]`);
    await page.waitForURL(`**/plugins/${plugin}`);
    await check("plugin");
    seen.plugin = {
      heading: await page.locator("h1").textContent(),
      facts: await page.locator(".key-facts dt").allTextContents(),
      permissions: await page.locator(".permissions").textContent(),
      readme: await page.locator(".readme").innerHTML(),
      scripts: await page.evaluate(() => [...document.scripts].map((script) => script.src)),
    };
    const tabs = {};
    for (const tab of ["versions", "changes", "changelog", "dependencies", "reviews", "stats"]) {
      const response = await visit(`plugin ${tab}`, `/plugins/${plugin}/${tab}`);
      tabs[tab] = {
        status: response.status(),
        current: await page.locator('.tabs a[aria-current="page"]').textContent(),
        rows: await page.locator("table.data tbody tr").count(),
        text: tab === "changelog" ? await page.locator(".tab-body").textContent() : null,
      };
    }
    seen.tabs = tabs;

    // A review, written and then edited: one per user.
    await page.goto(`${base}/plugins/${plugin}/reviews`);
    await page.selectOption("#stars", "4");
    await page.fill("#review-text", "Works well. <b>not bold</b>");
    await submit(page, ".review-form button");
    await page.selectOption("#stars", "5");
    await submit(page, ".review-form button");
    await check("plugin reviews (written)");
    seen.reviews = {
      items: await page.locator(`.reviews li#review-${username}`).count(),
      text: await page.locator(`#review-${username} .review-text`).innerHTML(),
      stars: await page.locator(`#review-${username} [role=img]`).getAttribute("aria-label"),
      legend: await page.locator(".review-form legend").textContent(),
    };

    // The theme switch, by hand: kept across pages.
    await page.selectOption("#theme", "dark");
    await submit(page, ".theme-switch button");
    seen.theme = {
      after_switch: await page.evaluate(() => document.documentElement.dataset.theme || null),
      url: page.url(),
    };
    await page.goto(base + "/");
    seen.theme.next_page = await page.evaluate(() => document.documentElement.dataset.theme || null);
    accessibility["home (dark by choice)"] = await axe(page);
    await page.selectOption("#theme", "system");
    await submit(page, ".theme-switch button");

    // The account: sessions, password change.
    await visit("account", "/account");
    seen.account = { sessions: await page.locator("table.data tbody tr").count() };
    await page.fill("#current_password", "not the password");
    await page.fill("#new_password", new_password);
    const refused = await submit(page, "form[action='/account/password'] button");
    seen.account.wrong_password = { status: refused.status(), alert: await page.locator(".alert").textContent() };
    await page.goto(base + "/account");
    await page.fill("#current_password", password);
    await page.fill("#new_password", new_password);
    await submit(page, "form[action='/account/password'] button", "**/account?done=password");
    seen.account.changed = await page.locator(".notice").textContent();

    // Screenshots of the main pages: desktop and phone, light and dark; a phone never
    // scrolls sideways.
    const overflow = {};
    for (const [name, path] of [["home", "/"], ["search", `/search?q=${typo}`], ["plugin", `/plugins/${plugin}`], ["account", "/account"]]) {
      for (const [size, viewport] of [["desktop", DESKTOP], ["phone", PHONE]]) {
        await page.setViewportSize(viewport);
        for (const scheme of ["light", "dark"]) {
          await page.emulateMedia({ colorScheme: scheme });
          await page.goto(base + path);
          await screenshot(page, `${artifacts}/${name}-${size}-${scheme}.png`);
        }
        if (size === "phone") {
          overflow[name] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        }
      }
    }
    seen.phone_overflow = overflow;
    await page.setViewportSize(DESKTOP);
    await page.emulateMedia({ colorScheme: "light" });

    // A page that does not exist, and sign out everywhere.
    const missing = await visit("not found", "/no/such/page");
    seen.not_found = { status: missing.status(), heading: await page.locator("h1").textContent() };
    await page.goto(base + "/account");
    await submit(page, "form[action='/account/sessions/end-all'] button", base + "/");
    seen.signed_out = { nav: await page.locator(".account-nav").textContent() };
    await page.goto(base + "/account");
    seen.signed_out.account = page.url();

    // JavaScript off: the same flows work with forms and links alone.
    const nojs = await watchedPage(browser, problems, { javaScriptEnabled: false, viewport: DESKTOP });
    await nojs.goto(base + "/");
    await nojs.fill("#hero-q", typo);
    await Promise.all([nojs.waitForURL("**/search?q=*"), nojs.press("#hero-q", "Enter")]);
    const nojsSeen = {
      search_lists_plugin: await nojs.locator(`.card a[href="/plugins/${plugin}"]`).count(),
    };
    await nojs.selectOption("#sort", "downloads");
    await submit(nojs, ".search-form button[type=submit]", "**sort=downloads**");
    nojsSeen.sorted_url = nojs.url();
    await nojs.goto(`${base}/plugins/${plugin}/reviews`);
    await nojs.click(`a[href^="/login?next="]`);
    await nojs.fill("#username", username);
    await nojs.fill("#password", new_password);
    await submit(nojs, "form.stacked button[type=submit]", `**/plugins/${plugin}/reviews`);
    nojsSeen.back_after_login = nojs.url();
    await nojs.selectOption("#stars", "3");
    await submit(nojs, ".review-form button");
    nojsSeen.review = await nojs.locator(`#review-${username} [role=img]`).getAttribute("aria-label");
    await submit(nojs, "form.delete-review button");
    nojsSeen.after_delete = { reviews: await nojs.locator(`#review-${username}`).count(), legend: await nojs.locator(".review-form legend").textContent() };
    seen.without_javascript = nojsSeen;

    return { seen, accessibility, csp, problems };
  } finally {
    await browser.close();
  }
});
