// A publisher and an administrator at work in the browser: the publisher deprecates a version
// and yanks another from their dashboard; the administrator takes a submitted version through
// review to certified and finds the yank in the audit log; someone else is refused the admin
// pages. Every page is checked with axe-core in both themes and for CSP violations.
//
// Then the air-gapped flow: a signed package and its signature downloaded from a plugin's page
// on this server are uploaded to a second one, through its publish pipeline.
//
// Input: { base, second, admin, other, deprecate, yank, certify, carry, artifacts }: the
// servers' origins, the administrator (who also publishes, on both) and another account as
// { username, password }, four versions as `namespace/name@version` (`carry` is the one
// carried across), and a directory for the downloads. Prints what it saw.
import { mkdirSync, writeFileSync } from "node:fs";
import { launch, main, pageChecks, signIn, submit, watchedPage } from "./chromium.mjs";

main(async ({ base, second, admin, other, deprecate, yank, certify, carry, artifacts, new_key }) => {
  mkdirSync(artifacts, { recursive: true });
  const browser = await launch();
  const problems = [];
  const { accessibility, csp, check } = pageChecks();
  const seen = {};
  const open = async (account, origin = base) => {
    const page = await watchedPage(browser, problems);
    await signIn(page, origin, account);
    return page;
  };
  const form = (spec, action) => {
    const [plugin, version] = spec.split("@");
    return `form[action='/publish/${plugin}/${version}/${action}']`;
  };
  try {
    const page = await open(admin);
    await page.goto(base + "/publish");
    await check(page, "publish");
    seen.namespaces = await page.locator("section.namespace h2").allTextContents();
    // The namespace's members and keys, by its owner.
    const [namespace] = deprecate.split("/");
    const section = page.locator("section.namespace", { has: page.locator(`h2#ns-${namespace}`) });
    await section.locator(`#ns-new-${namespace}`).fill(other.username);
    await submit(page, section.locator("form.add-ns-member button"), "**/publish");
    seen.ns_members = await section.locator("ul.namespace-members li").allTextContents();
    const keysBefore = await section.locator("ul.keys li").count();
    await section.locator(`#key-${namespace}`).fill(new_key);
    await submit(page, section.locator("form.add-key button"), "**/publish");
    const keysAdded = await section.locator("ul.keys li").count();
    await submit(page, section.locator("ul.keys li").last().locator("button"), "**/publish");
    seen.keys = { before: keysBefore, added: keysAdded, after_revoke: await section.locator("ul.keys li").count() };
    await page.fill(`${form(deprecate, "deprecate")} input[name=message]`, "Use 0.2 instead");
    await submit(page, `${form(deprecate, "deprecate")} button`, "**/publish");
    await submit(page, `${form(yank, "yank")} button`, "**/publish");
    seen.after = {
      undeprecate: await page.locator(form(deprecate, "undeprecate")).count(),
      unyank: await page.locator(form(yank, "unyank")).count(),
    };
    const [yankedPlugin] = yank.split("@");
    await page.goto(`${base}/plugins/${yankedPlugin}/versions`);
    seen.versions_tab = await page.locator("table.data tbody tr").first().textContent();

    await page.goto(base + "/admin");
    await check(page, "admin");
    seen.queue = await page.locator("table.data tbody tr th").allTextContents();
    const [certPlugin, certVersion] = certify.split("@");
    const step = `form[action='/admin/certifications/${certPlugin}/${certVersion}']`;
    await page.selectOption(`${step} select`, "start_review");
    await submit(page, `${step} button`, "**/admin");
    await page.goto(base + "/admin?state=in_review");
    await page.selectOption(`${step} select`, "certify");
    await submit(page, `${step} button`, "**/admin");
    await page.goto(`${base}/plugins/${certPlugin}`);
    seen.certified = await page.locator(".key-facts").textContent();

    await page.goto(`${base}/admin/users?prefix=some`);
    await check(page, "users");
    seen.users = await page.locator("table.users tbody th").allTextContents();

    await page.goto(`${base}/admin/audit?action=version.yank`);
    await check(page, "audit");
    seen.audit = await page.locator("table.data tbody tr").allTextContents();

    const outsider = await open(other);
    const refused = await outsider.goto(base + "/admin");
    seen.outsider = { status: refused.status(), code: await outsider.locator("main code").first().textContent() };
    const nav = await outsider.locator(".account-nav").textContent();
    seen.outsider.admin_link = nav.includes("Admin");

    // Air-gapped: download from this server's page, upload to the second.
    const [carried] = carry.split("@");
    // The package and its signature, fetched by following the links on its page.
    await page.goto(`${base}/plugins/${carried}`);
    const fetchLink = async (selector, path) => {
      const href = await page.locator(selector).getAttribute("href");
      const response = await page.request.get(new URL(href, base).href);
      if (!response.ok()) throw new Error(`${href} answered ${response.status()}`);
      writeFileSync(path, await response.body());
      return response.headers()["content-disposition"];
    };
    const packagePath = `${artifacts}/carried.aerie`;
    const signaturePath = `${artifacts}/carried.aerie.minisig`;
    seen.download_disposition = await fetchLink("a.button.secondary", packagePath);
    await fetchLink("a.signature", signaturePath);
    // The download shows on the publisher's dashboard once counted (counts are flushed every few
    // seconds), as a chart and as a table.
    const carriedSection = page.locator("section.namespace", { has: page.locator(`a[href='/plugins/${carried}']`) });
    const dailyOf = carriedSection.locator(`h3:has(a[href='/plugins/${carried}']) + .daily-downloads`);
    for (let attempt = 0; attempt < 40; attempt++) {
      await page.goto(base + "/publish");
      if ((await dailyOf.locator("svg.chart").count()) > 0) break;
      await page.waitForTimeout(500);
    }
    await check(page, "publish (downloads)");
    seen.dashboard_downloads = {
      chart: await dailyOf.locator("svg.chart").getAttribute("aria-label"),
      table: await dailyOf.locator("tbody td").allTextContents(),
    };
    const target = await open(admin, second);
    await target.goto(second + "/publish/upload");
    await check(target, "upload");
    await target.setInputFiles("#package", signaturePath);
    await submit(target, "form[action='/publish/upload'] button");
    seen.upload_not_a_package = await target.locator(".alert").textContent();
    await target.setInputFiles("#package", packagePath);
    await submit(target, "form[action='/publish/upload'] button");
    seen.upload_unsigned = await target.locator(".alert").textContent();
    await target.setInputFiles("#package", packagePath);
    await target.setInputFiles("#signature", signaturePath);
    await submit(target, "form[action='/publish/upload'] button");
    seen.uploaded = { url: target.url(), versions: await target.locator("table.data tbody tr").count() };
    await target.goto(`${second}/plugins/${carried}`);
    seen.uploaded.signature = await target.locator(".key-facts").textContent();
    return { seen, accessibility, csp, problems };
  } finally {
    await browser.close();
  }
});
