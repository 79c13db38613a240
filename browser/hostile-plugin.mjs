// A signed-in administrator opens a hostile plugin's page; the page attacks Aerie's API, its
// session cookie and another space's plugin origin. Prints what the page saw and what the
// browser holds afterwards.
//
// Input: { api, evil, other, username, password } — the API's origin, the hostile plugin's
// path under /s/ on it, and another space's plugin page (a full URL).
import { launch, main } from "./chromium.mjs";

main(async ({ api, evil, other, username, password }) => {
  const browser = await launch();
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(api + "/api/v1/me");
    const login = await page.evaluate(async ([username, password]) => {
      const response = await fetch("/api/v1/sessions", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ username, password }),
      });
      return response.status;
    }, [username, password]);
    const target = `${api}${evil}/page?api=${encodeURIComponent(api)}&other=${encodeURIComponent(other)}`;
    await page.goto(target);
    const landed = page.url();
    await page.waitForFunction(() => document.getElementById("results").textContent !== "running");
    const seen = JSON.parse(await page.locator("#results").textContent());

    // The plugin answers with Set-Cookie for Aerie's session and friends.
    const pluginOrigin = new URL(landed).origin;
    await page.goto(pluginOrigin + new URL(landed).pathname.replace(/\/page$/, "/set-cookie"));

    // A guarded route opens for the member who came through Aerie.
    const member = await page.goto(api + evil.replace(/$/, "/members/hello"));
    const memberStatus = member.status();
    const memberBody = await member.text();

    await page.goto(api + "/api/v1/me");
    const me = await page.evaluate(async () => {
      const response = await fetch("/api/v1/me");
      return { status: response.status, body: await response.json() };
    });

    // A stranger (no session) following the same links.
    const stranger = await (await browser.newContext()).newPage();
    const strangerMember = await stranger.goto(api + evil + "/members/hello");

    return {
      login,
      landed,
      seen,
      me,
      member: { status: memberStatus, body: memberBody },
      stranger_member: { status: strangerMember.status(), url: stranger.url() },
      cookies: (await context.cookies()).map(({ name, value, domain, httpOnly, sameSite }) =>
        ({ name, value, domain, httpOnly, sameSite })),
    };
  } finally {
    await browser.close();
  }
});
