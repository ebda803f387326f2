// End-to-end test of single sign-on in a real browser (Debian's headless Chromium, driven by
// playwright-core; no browser is ever downloaded).
//
// It starts `menshen demo` in its default single sign-on mode on a free loopback port: the
// portal at login.localhost, the demo registry at registry.localhost and the demo HR system at
// hr.localhost (Chromium resolves every *.localhost name to loopback), and walks the story the
// way a person would:
//   1. an anonymous visit to the registry is sent to the portal's login page, with rd naming the
//      registry page;
//   2. demo.staff's first login on the portal: password, forced OTP binding (the TOTP code is
//      computed here from the secret the page shows), password + OTP;
//   3. the portal hands the sign-in over to the registry, which shows the identity headers;
//   4. the link to the HR system reaches it signed in, with no login page in between;
//   5. logging out on HR ("登出所有系統") lands on the portal's login page;
//   6. the registry then asks to sign in again.
// Each app keeps its own host-only session cookie: none is shared through a Domain attribute.
// Screenshots of every step go to $MENSHEN_TEST_OUTPUT/e2e/sso/ (default
// <repo>/test-output/e2e/sso/), a directory of its own whose *.png files it clears when it
// starts: the other test files run at the same time, each with its own directory.
// The plumbing (starting the demo, the browser, TOTP codes, the binding page) is in helpers.mjs;
// the steps that differ from the single-host demo (absolute rd, three origins) are here.
//
// Environment:
//   MENSHEN_BIN          the menshen binary (default <repo>/target/debug/menshen, or
//                        $CARGO_TARGET_DIR/debug/menshen)
//   MENSHEN_TEST_OUTPUT  where test artefacts go (default <repo>/test-output)
//   CHROMIUM             the Chromium executable (default /usr/bin/chromium)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  BIND_PATH,
  LOGIN_PATH,
  OTP_PATH,
  SESSION_COOKIE,
  TOTP_STEP_SECONDS,
  clickAndWait,
  freePort,
  gatewayPages,
  identity,
  launchChromium,
  newPage as newPageIn,
  screenshots,
  startDemo,
  stopProcess,
  submitLogin,
  totp,
} from './helpers.mjs';

const TARGET = '/students';
const REGISTRY_TITLE = '示範學籍系統';
const HR_TITLE = '示範人事系統';
const PHONE = { width: 390, height: 844 };

describe('menshen demo with single sign-on in headless Chromium', { timeout: 300_000 }, () => {
  // The demo is killed when the test process exits, even if the runner dies between hooks
  // (startProcess in helpers.mjs sees to that).
  let demo;
  let creds;
  let port;
  let browser;
  let context;
  let page;
  let secret;
  let registryCookie;
  const portal = () => `http://login.localhost:${port}`;
  const registry = () => `http://registry.localhost:${port}`;
  const hr = () => `http://hr.localhost:${port}`;
  const shots = screenshots('sso');
  const { screenshot } = shots;
  // The shared page steps, aimed at the portal: every sign-in page lives there.
  const { where: onPortal, sessionCookieOf: portalCookieOf, readBindOtpPage } = gatewayPages(portal);

  /** The page's current URL, after checking it is on `origin`. */
  function on(origin) {
    const url = new URL(page.url());
    assert.equal(url.origin, origin, `on ${origin} (at ${page.url()})`);
    return url;
  }

  /**
   * Clicks `locator` and waits until the main frame has loaded a page on `origin` at `pathname`;
   * returns that page's response. For the steps that cross origins through a chain of redirects
   * (portal → app through the hand-off, app → app, app → portal): they wait for the page the
   * chain ends on, not for the first navigation.
   */
  async function clickAndWaitFor(locator, origin, pathname) {
    const [response] = await Promise.all([
      page.waitForResponse(
        (r) => {
          const u = new URL(r.url());
          return r.request().isNavigationRequest() && r.frame() === page.mainFrame() && r.status() < 300 &&
            u.origin === origin && u.pathname === pathname;
        },
      ),
      page.waitForURL((u) => u.origin === origin && u.pathname === pathname, { waitUntil: 'load' }),
      locator.click(),
    ]);
    return response;
  }

  /** The session cookie the browser keeps for `origin`, if any. */
  async function cookieFor(origin) {
    return (await context.cookies(origin)).find((c) => c.name === SESSION_COOKIE);
  }

  /**
   * Checks the page is the portal's login page, asked for on behalf of the registry's TARGET
   * (rd is the page's absolute URL, and the form carries it on to the POST).
   */
  async function assertPortalLoginForRegistry() {
    const url = onPortal(page);
    assert.equal(url.pathname, LOGIN_PATH, `on the portal's login page (at ${page.url()})`);
    assert.equal(url.searchParams.get('rd'), registry() + TARGET, 'rd names the registry page');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await page.locator('#password').waitFor({ state: 'visible' });
    assert.equal(
      await page.locator('#login-form input[name="rd"]').inputValue(),
      registry() + TARGET,
      'the form carries rd on to the POST',
    );
  }

  /** Checks the demo app page: its title and the identity it received. */
  async function assertAppPage(title, path) {
    await page.locator('#identity').waitFor({ state: 'visible' });
    const heading = (await page.locator('#demo-title').textContent()).trim();
    assert.ok(heading.startsWith(title), `the page is ${title} (title: ${heading})`);
    assert.equal((await page.locator('#path').textContent()).trim(), path, 'the demo app served the path');
    assert.equal((await identity(page, 'x-menshen-user')).raw, creds.staff.username);
    assert.equal((await identity(page, 'x-menshen-user')).raw, 'demo.staff');
    assert.equal((await identity(page, 'x-menshen-auth-method')).raw, 'password+otp');
    assert.equal((await identity(page, 'x-menshen-name')).decoded, '王小明');
    // The gateway's session cookie must not leak to the legacy app.
    const forwardedCookie = page.locator('#headers tr[data-header="cookie"] td.value');
    if ((await forwardedCookie.count()) > 0) {
      assert.doesNotMatch(await forwardedCookie.textContent(), /(^|;\s*)menshen=/, 'session cookie not forwarded');
    }
  }

  /** Checks that no cookie in the browser is shared between hosts through a Domain attribute. */
  async function assertHostOnlyCookies() {
    for (const cookie of await context.cookies()) {
      assert.ok(!cookie.domain.startsWith('.'), `cookie ${cookie.name} is host-only (domain ${cookie.domain})`);
      assert.match(
        cookie.domain,
        /^(login|registry|hr)\.localhost$/,
        `cookie ${cookie.name} belongs to one of the demo's hosts (domain ${cookie.domain})`,
      );
    }
  }

  before(async () => {
    shots.clear();
    port = await freePort();
    demo = startDemo(port, { sso: true });
    creds = await demo.ready;
    assert.equal(creds.url, `${registry()}/`, 'the demo prints the registry URL first');
    browser = await launchChromium();
    ({ context, page } = await newPageIn(browser));
  }, { timeout: 120_000 });

  after(async () => {
    try {
      await context?.close();
      await browser?.close();
    } finally {
      await stopProcess(demo?.child);
      shots.report();
    }
  });

  it('1. sends an anonymous visit to the registry to the portal login page, with rd', async () => {
    const response = await page.goto(registry() + TARGET);
    assert.equal(response.status(), 200, 'the login page itself is served with 200');
    const first = response.request().redirectedFrom();
    assert.ok(first, 'the registry answered with a redirect');
    assert.equal(first.url(), registry() + TARGET);
    assert.equal((await first.response()).status(), 302, 'the registry redirects with 302');
    await assertPortalLoginForRegistry();
    assert.equal(await page.locator('#message').count(), 0, 'no message before any attempt');
    assert.equal(await cookieFor(registry()), undefined, 'the registry set no cookie yet');
    await screenshot(page, '01-portal-login-from-registry');
  });

  it('2a. sends the password to the forced binding page on the portal', async () => {
    const response = await submitLogin(page, creds.staff.username, creds.staff.password);
    assert.equal(response.status(), 200);
    assert.equal(onPortal(page).pathname, BIND_PATH, 'the right password leads to the binding page');
    const cookie = await portalCookieOf(context);
    assert.ok(cookie, 'the portal set a (half-logged-in) session cookie');
    assert.ok(cookie.httpOnly, 'the portal session cookie is HttpOnly');
    await page.locator('#bind-methods').waitFor({ state: 'visible' });
    await screenshot(page, '02-portal-bind-page');

    // The half-logged-in session reaches no app: the registry still sends it to sign in.
    await page.goto(registry() + TARGET);
    assert.notEqual(new URL(page.url()).origin, registry(), 'the registry is not reached before the binding');
    assert.equal(await page.locator('#identity').count(), 0, 'the legacy app was not reached');
    await page.goto(`${portal()}${BIND_PATH}`);
    assert.equal(onPortal(page).pathname, BIND_PATH);
  });

  it('2b. binds the authenticator on the portal and asks to sign in again', async () => {
    await clickAndWait(page, page.locator('#bind-otp'));
    secret = await readBindOtpPage(page, creds.staff);
    await screenshot(page, '03-portal-bind-otp-page');

    await page.locator('#code').fill(totp(secret, Date.now() / 1000));
    const response = await clickAndWait(page, page.locator('#bind-submit'));
    assert.equal(response.status(), 200);
    const url = onPortal(page);
    assert.equal(url.pathname, LOGIN_PATH, 'a correct code leads back to the login page');
    assert.equal(url.searchParams.get('bound'), '1');
    const message = (await page.locator('#message').textContent()).trim();
    assert.ok(message.includes('綁定完成，請使用已綁定方式重新登入'), `bound message is shown (got: ${message})`);
    assert.equal(await portalCookieOf(context), undefined, 'binding ended the session');
    await screenshot(page, '04-portal-login-after-binding');
  });

  it('2c. signs in again from the registry with password and OTP code', async () => {
    await page.goto(registry() + TARGET);
    await assertPortalLoginForRegistry();
    const response = await submitLogin(page, creds.staff.username, creds.staff.password);
    assert.equal(response.status(), 200);
    assert.equal(onPortal(page).pathname, OTP_PATH, 'the right password leads to the OTP step');
    await page.locator('#otp-form').waitFor({ state: 'visible' });
    assert.equal((await page.locator('#display-name').textContent()).trim(), '王小明');
    await screenshot(page, '05-portal-otp-page');

    // The binding spent the current code; the gateway accepts ±1 step, so the next one.
    await page.locator('#code').fill(totp(secret, Date.now() / 1000 + TOTP_STEP_SECONDS));
    const landed = await clickAndWaitFor(page.locator('#otp-submit'), registry(), TARGET);
    assert.equal(landed.status(), 200, 'the registry page is served with 200');
  });

  it('3. lands on the registry page through the hand-off, with the identity headers', async () => {
    const url = on(registry());
    assert.equal(url.pathname + url.search, TARGET, 'lands on the page first asked for, code gone from the URL');
    await assertAppPage(REGISTRY_TITLE, TARGET);
    assert.equal(await page.locator('#other-system').getAttribute('href'), `${hr()}/`, 'links to the HR system');

    const cookie = await cookieFor(registry());
    assert.ok(cookie, 'the registry set its own session cookie');
    assert.ok(cookie.httpOnly, 'the registry session cookie is HttpOnly');
    assert.equal(cookie.domain, 'registry.localhost', 'the registry cookie is host-only');
    registryCookie = cookie.value;
    const portalCookie = await portalCookieOf(context);
    assert.ok(portalCookie, 'the portal keeps its own session');
    assert.notEqual(portalCookie.value, registryCookie, 'the registry session is not the portal session');
    await assertHostOnlyCookies();
    await screenshot(page, '06-registry-signed-in');
  });

  it('4. follows the link to HR: same identity, no login page in between', async () => {
    // Every main-frame request (redirect hops too) and every page actually shown.
    const requested = [];
    const shown = [];
    const onRequest = (request) => {
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) requested.push(request.url());
    };
    const onNavigated = (frame) => {
      if (frame === page.mainFrame()) shown.push(frame.url());
    };
    page.on('request', onRequest);
    page.on('framenavigated', onNavigated);
    try {
      const response = await clickAndWaitFor(page.locator('#other-system'), hr(), '/');
      assert.equal(response.status(), 200, 'the HR page is served with 200');
      await page.locator('#identity').waitFor({ state: 'visible' });
    } finally {
      page.off('request', onRequest);
      page.off('framenavigated', onNavigated);
    }

    const url = on(hr());
    assert.equal(url.pathname, '/', 'lands on the HR page the link names');
    await assertAppPage(HR_TITLE, '/');
    assert.equal(await page.locator('#other-system').getAttribute('href'), `${registry()}/`, 'links back to the registry');

    // The way there: HR → portal (which hands off at once) → HR's hand-off → HR's page.
    const hops = requested.map((u) => new URL(u));
    assert.ok(
      hops.some((u) => u.origin === portal() && u.pathname === LOGIN_PATH),
      `the browser went through the portal (hops: ${requested.join(' → ')})`,
    );
    assert.ok(
      hops.some((u) => u.origin === hr() && u.pathname === '/.menshen/handoff'),
      `HR redeemed a hand-off (hops: ${requested.join(' → ')})`,
    );
    assert.ok(shown.length > 0, 'a page was shown');
    for (const u of shown) {
      assert.notEqual(new URL(u).origin, portal(), `no portal page was shown on the way (shown: ${shown.join(', ')})`);
    }
    assert.equal(await page.locator('#password').count(), 0, 'no password field on the HR page');

    // Each app keeps its own host-only cookie.
    const hrCookie = await cookieFor(hr());
    assert.ok(hrCookie, 'HR set its own session cookie');
    assert.equal(hrCookie.domain, 'hr.localhost', 'the HR cookie is host-only');
    assert.notEqual(hrCookie.value, registryCookie, 'HR has a session of its own');
    const hrCookies = await context.cookies(hr());
    assert.ok(
      hrCookies.every((c) => c.value !== registryCookie),
      "the registry's session cookie is not sent to HR",
    );
    assert.equal((await cookieFor(registry())).value, registryCookie, 'the registry cookie is unchanged');
    await assertHostOnlyCookies();
    await screenshot(page, '07-hr-signed-in');

    // The same page at phone width.
    await page.setViewportSize(PHONE);
    try {
      await page.locator('#identity').waitFor({ state: 'visible' });
      await screenshot(page, '08-hr-signed-in-phone');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the HR page fits 390 px without sideways scrolling (overflow ${overflow} px)`);
    } finally {
      await page.setViewportSize({ width: 1100, height: 800 });
    }
  });

  it('4b. the portal lists the sign-in with both systems it reached', async () => {
    await page.goto(`${portal()}/.menshen/account?tab=activity`);
    const table = page.locator('#sign-ins-table');
    await table.waitFor({ state: 'visible' });
    const text = await table.innerText();
    assert.match(text, /registry\.localhost/, `the registry is among the systems: ${text}`);
    assert.match(text, /hr\.localhost/, `HR is among the systems: ${text}`);
    assert.match(text, /目前使用的裝置/, 'this device is marked');
    await screenshot(page, '08b-portal-sign-ins');
    await page.setViewportSize(PHONE);
    try {
      await screenshot(page, '08c-portal-sign-ins-phone');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `the account page fits 390 px without sideways scrolling (overflow ${overflow} px)`);
    } finally {
      await page.setViewportSize({ width: 1100, height: 800 });
    }
    await page.goto(`${hr()}/payroll`);
    await page.locator('#identity').waitFor({ state: 'visible' });
  });

  it('5. logs out on HR, which lands on the portal login page: 已登出所有系統', async () => {
    await clickAndWait(page, page.locator('#demo-logout'));
    const confirm = on(hr());
    assert.equal(confirm.pathname, '/.menshen/logout', 'the logout link asks to confirm first');
    const button = page.locator('#logout-submit');
    await button.waitFor({ state: 'visible' });
    assert.equal((await button.textContent()).trim(), '登出所有系統');
    assert.ok(
      (await page.locator('body').textContent()).includes(creds.staff.username),
      'the confirmation names the account',
    );
    await screenshot(page, '09-hr-logout-confirm');

    const response = await clickAndWaitFor(button, portal(), LOGIN_PATH);
    assert.equal(response.status(), 200);
    assert.equal(onPortal(page).pathname, LOGIN_PATH, 'the logout lands on the portal login page');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    const message = page.locator('#message');
    await message.waitFor({ state: 'visible' });
    const text = (await message.textContent()).trim();
    assert.ok(text.includes('已登出所有系統'), `the page says 已登出所有系統 (got: ${text})`);
    // The portal's cookie was set by another host, so this response cannot clear it: that the
    // portal session itself is over shows in step 6 (the portal no longer hands off).
    assert.equal(await cookieFor(hr()), undefined, 'the HR session cookie is gone');
    await screenshot(page, '10-portal-after-logout');
  });

  it('6. the registry asks to sign in again', async () => {
    // The browser still sends the registry's cookie, and the portal's: both sessions were ended
    // on the server, or the registry would show its page, or the portal hand off at once.
    assert.equal((await cookieFor(registry()))?.value, registryCookie, 'the browser still holds the registry cookie');
    await page.goto(registry() + TARGET);
    await assertPortalLoginForRegistry();
    assert.equal(await page.locator('#identity').count(), 0, 'the legacy app was not reached');
    await screenshot(page, '11-registry-after-logout');
  });
});
