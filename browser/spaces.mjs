// A space's owner runs a plugin from the browser: creates a space, installs a plugin with a
// config and a secret after consenting to what it may do, calls its endpoint, updates it to a
// version that asks for more (consent shown again), rolls back, disables and enables it. Then
// a viewer of the space sees no controls and has every change refused, and the owner
// uninstalls. Pages are checked with axe-core in both themes and for CSP violations.
//
// Input: { phase, base, space, plugin, owner, viewer, stranger, secret, artifacts }: `phase` is
// `owner` (up to enabling) or `viewer` (the viewer's checks, a stranger's, then the uninstall);
// owner, viewer and stranger are { username, password }. Prints what it saw.
import { mkdirSync } from "node:fs";
import { launch, main, pageChecks, screenshot, signIn, submit, watchedPage } from "./chromium.mjs";

async function signedIn(browser, base, account, problems) {
  const page = await watchedPage(browser, problems);
  await signIn(page, base, account);
  return { page };
}

// Posts a form from one of the server's own pages, as a crafted form would: the answer's
// status and code.
async function postFrom(page, path, fields) {
  return page.evaluate(async ([path, fields]) => {
    const response = await fetch(path, { method: "POST", body: new URLSearchParams(fields), redirect: "manual" });
    const text = await response.text();
    const code = (text.match(/code <code>([a-z_]+)<\/code>/) || [])[1] || null;
    return { status: response.status, code };
  }, [path, fields]);
}

main(async ({ phase, base, space, plugin, owner, viewer, stranger, secret, artifacts }) => {
  mkdirSync(artifacts, { recursive: true });
  const browser = await launch();
  const problems = [];
  const { accessibility, csp, check } = pageChecks();
  const seen = {};

  const installation = `/spaces/${space}/plugins/${plugin}`;
  try {
    if (phase === "owner") {
      const { page } = await signedIn(browser, base, owner, problems);
      await page.goto(base + "/spaces");
      await check(page, "spaces");
      await page.fill("#space-name", space);
      await submit(page, "form[action='/spaces'] button", `**/spaces/${space}`);
      await check(page, "space (empty)");

      // From the plugin's page into the install form.
      await page.goto(`${base}/plugins/${plugin}`);
      await page.selectOption("#install-space", space);
      await submit(page, ".install-start button", "**/install?**");
      await check(page, "install");
      seen.form = {
        versions: await page.locator("#version option").allTextContents(),
        config_default: await page.inputValue("#config\\.default-name"),
        secret_fields: await page.locator("input[type=password]").count(),
        consent: await page.locator(".consent").textContent(),
      };
      await page.selectOption("#version", "0.1.0");
      await page.fill("#config\\.default-name", "friend");
      await page.fill(`#secret-access-token`, secret);
      await page.check("input[name=consent]");
      await submit(page, ".install-form > button", `**${installation}`);
      await check(page, "installation");
      const html = await page.content();
      seen.installed = {
        status: await page.locator("dd.status").textContent(),
        health: await page.locator("dd.health").textContent(),
        breaker: await page.locator("dd.breaker").textContent(),
        secret_badge: await page.locator(".secret .badge").textContent(),
        secret_in_page: html.includes(secret),
        endpoint: await page.locator("a.endpoint").getAttribute("href"),
      };

      // Its endpoint, on the space's own origin; the secret reached the plugin.
      const endpoint = seen.installed.endpoint;
      await page.goto(endpoint);
      seen.endpoint = { origin: new URL(page.url()).origin, body: (await page.textContent("body")).trim() };
      seen.endpoint.private = await page.evaluate(async ([url, secret]) => {
        const response = await fetch(url, { headers: { Authorization: `Bearer ${secret}` } });
        return { status: response.status, body: (await response.text()).trim() };
      }, [endpoint + "private", secret]);

      // What changes between the two versions, on the plugin's page.
      await page.goto(`${base}/plugins/${plugin}/changes`);
      await check(page, "plugin changes");
      seen.changes_tab = {
        heading: await page.locator(".tab-body h2").textContent(),
        changes: await page.locator(".changes li").allTextContents(),
      };

      // The config, changed and refused by field.
      await page.goto(base + installation);
      await page.fill("#config\\.default-name", "neighbour");
      await submit(page, "form[action$='/config'] button", "**?done=config");
      seen.config_saved = await page.locator(".notice").textContent();

      // An update that asks for more shows what, and needs consent.
      await page.goto(`${base}/spaces/${space}`);
      await check(page, "space");
      seen.dashboard = {
        update: await page.locator(".installations .badge.warning").allTextContents(),
        health: await page.locator("td.health").allTextContents(),
      };
      const consent = await submit(page, `form[action='${installation}/update'] button`);
      await check(page, "consent");
      seen.update_consent = {
        status: consent.status(),
        text: await page.locator(".consent").textContent(),
        changes: await page.locator(".changes li").allTextContents(),
      };
      await submit(page, "form[action$='/update'] button", `**/spaces/${space}`);
      const row = () => page.locator(".installations tbody tr", { has: page.locator(`th a[href='${installation}']`) });
      const versionCell = () => row().locator("td").first().textContent();
      seen.updated = await versionCell();
      await submit(page, `form[action='${installation}/rollback'] button`, `**/spaces/${space}`);
      seen.rolled_back = await versionCell();
      await submit(page, `form[action='${installation}/disable'] button`, `**/spaces/${space}`);
      seen.disabled = await row().locator("td.status").textContent();
      await submit(page, `form[action='${installation}/enable'] button`, `**/spaces/${space}`);
      seen.enabled = await row().locator("td.status").textContent();
      await screenshot(page, `${artifacts}/space-desktop-light.png`);

      // Update all: what needs no new consent is updated; what asks for more waits for it.
      await submit(page, `form[action='/spaces/${space}/update-all'] button`, `**/spaces/${space}/update-all`);
      await check(page, "update all");
      seen.update_all = {
        updated: await page.locator("ul.updated li").allTextContents(),
        waiting: await page.locator("ul.waiting li").allTextContents(),
      };

      // Members and tokens: the viewer joins; a token is shown once, works, and is revoked.
      await page.goto(`${base}/spaces/${space}/access`);
      await check(page, "access");
      await page.fill("#new-member", viewer.username);
      await page.selectOption("#new-role", "viewer");
      await submit(page, "form.add-member button", `**/spaces/${space}/access`);
      seen.members = await page.locator("table.members tbody th").allTextContents();
      await page.check("input[name=require_signed]");
      await submit(page, "form.policy button", `**/spaces/${space}/access`);
      seen.policy = { require_signed: await page.isChecked("input[name=require_signed]"), require_certified: await page.isChecked("input[name=require_certified]") };
      await page.fill("#token-name", "ci");
      await page.selectOption("#token-role", "viewer");
      await submit(page, "form.new-token button");
      await check(page, "new token");
      const token = await page.inputValue("#secret");
      const withToken = async () => page.evaluate(async ([space, token]) =>
        (await fetch(`/api/v1/spaces/${space}`, { headers: { Authorization: `Bearer ${token}` } })).status, [space, token]);
      seen.space_token = { prefix: token.slice(0, 6), works: await withToken() };
      await page.goto(`${base}/spaces/${space}/access`);
      await submit(page, "table.tokens form button", `**/spaces/${space}/access`);
      seen.space_token.after_revoke = await withToken();
      await page.goto(`${base}/account/tokens`);
      await check(page, "account tokens");
      await page.fill("#token-name", "laptop");
      await page.check("input[name=scope][value=publish]");
      await submit(page, "form[action='/account/tokens'] button");
      const apiToken = await page.inputValue("#secret");
      seen.api_token = await page.evaluate(async (token) => {
        const response = await fetch("/api/v1/me", { headers: { Authorization: `Bearer ${token}` } });
        return { status: response.status, scopes: (await response.json()).token_scopes };
      }, apiToken);

      // A hostile plugin's contributed page, framed on its installation's page.
      page.ignoringConsole = true;
      await page.goto(`${base}/install?space=${space}&plugin=testing/hostile`);
      await page.check("input[name=consent]");
      await submit(page, ".install-form > button");
      if (!page.url().endsWith(`/spaces/${space}/plugins/testing/hostile`)) {
        throw new Error(`the install was refused: ${await page.locator(".alert").textContent()}`);
      }
      const frameElement = page.locator(".plugin-frame iframe");
      await frameElement.scrollIntoViewIfNeeded();
      const frame = await (await frameElement.elementHandle()).contentFrame();
      await frame.waitForFunction(() => document.getElementById("results")?.textContent !== "running");
      seen.framed = {
        src: await frameElement.getAttribute("src"),
        sandbox: await frameElement.getAttribute("sandbox"),
        results: JSON.parse(await frame.locator("#results").textContent()),
        dashboard_title: await page.title(),
      };
      await check(page, "installation with a framed page");
      // Another change to the space leaves the rolled-back plugin where it was rolled back to.
      await page.goto(`${base}/spaces/${space}`);
      page.ignoringConsole = false;
      seen.after_other_install = await versionCell();
      await page.goto(base + installation);
      await screenshot(page, `${artifacts}/installation-desktop-light.png`);
    } else {
      // A viewer: sees, cannot change.
      const { page } = await signedIn(browser, base, viewer, problems);
      await page.goto(`${base}/spaces/${space}`);
      await check(page, "space (viewer)");
      seen.viewer = {
        rows: await page.locator(".installations tbody tr").count(),
        controls: await page.locator("td.actions, a[href='/search'].button, form[action$='/update-all']").count(),
      };
      await page.goto(base + installation);
      seen.viewer.forms = await page.locator("main form").count();
      seen.viewer.posts = {};
      for (const action of ["disable", "uninstall", "update", "config", "secrets"]) {
        seen.viewer.posts[action] = await postFrom(page, `${installation}/${action}`, { name: "access-token", value: "x" });
      }
      seen.viewer.posts.update_all = await postFrom(page, `/spaces/${space}/update-all`, {});
      seen.viewer.posts.policy = await postFrom(page, `/spaces/${space}/policy`, {});
      seen.viewer.posts.promote_self = await postFrom(page, `/spaces/${space}/members`, { username: viewer.username, role: "owner" });
      seen.viewer.posts.token = await postFrom(page, `/spaces/${space}/tokens`, { name: "mine", role: "admin" });
      seen.viewer.posts.install = await postFrom(page, "/install", { space, plugin, version: "0.1.0", consent: "1", accept: "{}" });
      await page.goto(`${base}/plugins/${plugin}`);
      seen.viewer.install_button = await page.locator(".install-start").count();

      // A stranger: the space is not there.
      const outsider = await signedIn(browser, base, stranger, problems);
      const missing = await outsider.page.goto(`${base}/spaces/${space}`);
      seen.stranger = { status: missing.status(), code: await outsider.page.locator("main code").first().textContent() };

      // The owner uninstalls; its dependency goes with it.
      const { page: ownerPage } = await signedIn(browser, base, owner, problems);
      await ownerPage.goto(`${base}/spaces/${space}`);
      seen.needed_by = await ownerPage.locator(".installations td.actions .muted").allTextContents();
      await submit(ownerPage, `form[action='${installation}/uninstall'] button`, `**/spaces/${space}`);
      seen.after_uninstall = await ownerPage.locator(".installations tbody tr").count();
    }
    return { seen, accessibility, csp, problems };
  } finally {
    await browser.close();
  }
});
