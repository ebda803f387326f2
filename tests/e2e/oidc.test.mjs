// End-to-end test of login with an OpenID Connect provider ("Google 帳號") in a real browser
// (Debian's headless Chromium, driven by playwright-core; no browser is ever downloaded).
//
// It starts the loopback provider of tests/oidc (a real `oidc-provider`) and `menshen demo`
// with --oidc-issuer pointing at it, then walks the whole story the way a person would:
//   1. demo.staff's first login: password, forced binding, OTP binding, password + OTP;
//   2. the login settings tab: bind the provider account teacher1@example.edu.tw through the
//      provider's own login form, and see it listed as bound;
//   3. log out;
//   4. log in with the "Google帳號登入" button (the provider may remember its session and skip
//      its form: both are handled), then the OTP code, and land on the legacy app with
//      x-menshen-auth-method = oidc:google+otp;
//   5. a provider account that was never bound (teacher2) gets the 403 error page and no session.
// TOTP codes are computed (by helpers.mjs) from the secret the binding page shows. Each code is
// accepted once and only within ±1 step of now, so step 4 waits for a later step than step 1 used.
// Screenshots of every step go to $MENSHEN_TEST_OUTPUT/e2e/oidc/ (default
// <repo>/test-output/e2e/oidc/), a directory of its own whose *.png files it clears when it
// starts: the other test files run at the same time, each with its own directory.
// The plumbing (starting the demo, the browser, TOTP codes, the steps the login test takes too)
// is in helpers.mjs; the provider, which only this test uses, is started here.
//
// Environment:
//   MENSHEN_BIN          the menshen binary (default <repo>/target/debug/menshen, or
//                        $CARGO_TARGET_DIR/debug/menshen)
//   MENSHEN_TEST_OUTPUT  where test artefacts go (default <repo>/test-output)
//   CHROMIUM             the Chromium executable (default /usr/bin/chromium)
// The provider needs tests/oidc/node_modules (run `npm ci` in tests/oidc).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { request as playwrightRequest } from 'playwright-core';
import {
  BIND_PATH,
  LOGIN_PATH,
  OTP_PATH,
  REPO,
  TOTP_STEP_SECONDS,
  clickAndWait,
  freePort,
  gatewayPages,
  identity,
  launchChromium,
  newPage as newPageIn,
  parseDemo,
  screenshots,
  startDemo,
  startProcess,
  stepOf,
  stopProcess,
  totpAtStep,
} from './helpers.mjs';

const OIDC_DIR = path.join(REPO, 'tests', 'oidc');
const PROVIDER_SCRIPT = path.join(OIDC_DIR, 'provider.mjs');
const CLIENT_ID = 'demo';
const CLIENT_SECRET = 'demo-secret';
const TARGET = '/students?id=7';
const ACCOUNT_PATH = '/.menshen/account';
const SETTINGS = `${ACCOUNT_PATH}?tab=settings`;
const OIDC_START_PATH = '/.menshen/oidc/google/start';
const OIDC_CALLBACK_PATH = '/.menshen/oidc/google/callback';
const GOOGLE_BUTTON = 'Google帳號登入';
const BOUND_ACCOUNT = { login: 'teacher1@example.edu.tw', password: 'pw' };
const UNBOUND_ACCOUNT = { login: 'teacher2@example.edu.tw', password: 'pw' };

/** Starts the loopback OpenID Connect provider; resolves with its issuer. */
function startProvider(gatewayPort) {
  return startProcess(
    'the OpenID Connect provider (tests/oidc/provider.mjs)',
    process.execPath,
    [
      PROVIDER_SCRIPT,
      '--port',
      '0',
      '--client-id',
      CLIENT_ID,
      '--client-secret',
      CLIENT_SECRET,
      '--redirect-uri',
      `http://127.0.0.1:${gatewayPort}${OIDC_CALLBACK_PATH}`,
    ],
    (stdout) => {
      const m = stdout.match(/^READY (http:\/\/\S+)\s*$/m);
      return m ? { issuer: m[1] } : undefined;
    },
    { cwd: OIDC_DIR },
  );
}

/** Starts `menshen demo` with the provider as its "Google 帳號"; resolves with URL, issuer and accounts. */
function startOidcDemo(port, issuer) {
  return startDemo(port, {
    args: ['--oidc-issuer', issuer, '--oidc-client-id', CLIENT_ID],
    env: { MENSHEN_DEMO_OIDC_SECRET: CLIENT_SECRET },
    parse: (stdout) => {
      const demo = parseDemo(stdout);
      const oidc = stdout.match(/^\s*OpenID Connect:\s+(\S+)/m);
      if (!(demo && oidc)) return undefined;
      return { ...demo, issuer: oidc[1] };
    },
  });
}

describe('menshen demo with an OpenID Connect provider in headless Chromium', { timeout: 300_000 }, () => {
  // The demo and the provider are killed when the test process exits, even if the runner dies
  // between hooks (startProcess in helpers.mjs sees to that).
  let provider;
  let demo;
  let issuer;
  let creds;
  let base;
  let browser;
  const shots = screenshots('oidc');
  const { screenshot } = shots;
  const { where, sessionCookieOf, loginVia, readBindOtpPage } = gatewayPages(() => base);
  const newPage = () => newPageIn(browser);

  /** The page's current URL, after checking it is on the provider. */
  function atProvider(page) {
    const url = new URL(page.url());
    assert.equal(url.origin, issuer, `on the provider's origin (at ${page.url()})`);
    return url;
  }

  /** The "Google帳號登入" link of the login page, after checking where it points. */
  async function googleButton(page, rd) {
    const link = page.getByRole('link', { name: GOOGLE_BUTTON, exact: true });
    await link.waitFor({ state: 'visible' });
    assert.equal(await link.count(), 1, 'the login page has one Google帳號登入 button');
    const href = new URL(await link.getAttribute('href'), page.url());
    assert.equal(href.origin, base, 'the button starts on the gateway');
    assert.equal(href.pathname, OIDC_START_PATH, `the button goes to ${OIDC_START_PATH}`);
    assert.equal(href.searchParams.get('rd'), rd, 'the button carries rd');
    return link;
  }

  /**
   * On the provider's login form (/interaction/UID): checks it, takes a screenshot, signs in as
   * `account` and returns the response of the page the redirects end on.
   */
  async function signInAtProvider(page, account, shot) {
    const url = atProvider(page);
    assert.match(url.pathname, /^\/interaction\/[A-Za-z0-9_-]+$/, `provider login form at /interaction/UID (at ${url})`);
    const form = page.locator('form#login');
    await form.waitFor({ state: 'visible' });
    const body = await page.locator('body').textContent();
    assert.match(body, new RegExp(`Client\\s+${CLIENT_ID}\\s`), `the provider names the gateway's client (got: ${body})`);
    await form.locator('input[name="login"]').fill(account.login);
    await form.locator('input[name="password"]').fill(account.password);
    await screenshot(page, shot);
    return clickAndWait(page, form.locator('button[type="submit"]'));
  }

  before(async () => {
    assert.ok(
      existsSync(path.join(OIDC_DIR, 'node_modules', 'oidc-provider')),
      `oidc-provider not installed in ${OIDC_DIR} (run npm ci there)`,
    );
    shots.clear();
    // The gateway's port comes first: the provider must know the redirect URI. The provider
    // picks its own port (--port 0) and says which in its READY line.
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    provider = startProvider(port);
    ({ issuer } = await provider.ready);
    assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/, 'the provider listens on loopback');
    demo = startOidcDemo(port, issuer);
    creds = await demo.ready;
    assert.equal(new URL(creds.url).origin, base, 'demo prints the URL it listens on');
    assert.equal(creds.issuer, issuer, 'demo prints the issuer it was given');
    browser = await launchChromium();
  }, { timeout: 120_000 });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await stopProcess(demo?.child);
      await stopProcess(provider?.child);
      shots.report();
    }
  });

  describe('staff binds a Google account, then logs in with it and OTP', () => {
    let context;
    let page;
    let secret;
    // The last TOTP step spent on a login: a code is accepted once, so the next login must
    // use a later step.
    let lastStep;

    before(async () => {
      ({ context, page } = await newPage());
    });
    after(async () => {
      await context?.close();
    });

    it('first login: password, forced binding, OTP binding, password + OTP', async () => {
      let response = await loginVia(page, TARGET, creds.staff);
      assert.equal(response.status(), 200);
      assert.equal(where(page).pathname, BIND_PATH, 'an account without a second factor must bind first');
      await page.locator('#bind-methods').waitFor({ state: 'visible' });
      await screenshot(page, '01-bind-page-forced-staff');

      await clickAndWait(page, page.locator('#bind-otp'));
      secret = await readBindOtpPage(page, creds.staff);
      await screenshot(page, '02-bind-otp-page-staff');

      const bindStep = stepOf(Date.now() / 1000);
      await page.locator('#code').fill(totpAtStep(secret, bindStep));
      response = await clickAndWait(page, page.locator('#bind-submit'));
      assert.equal(response.status(), 200);
      let url = where(page);
      assert.equal(url.pathname, LOGIN_PATH, 'a correct binding code leads back to the login page');
      assert.equal(url.searchParams.get('bound'), '1');
      assert.equal(await sessionCookieOf(context), undefined, 'binding ended the session');
      await screenshot(page, '03-login-after-binding');

      response = await loginVia(page, TARGET, creds.staff);
      assert.equal(response.status(), 200);
      assert.equal(where(page).pathname, OTP_PATH, 'the password now leads to the OTP step');
      await page.locator('#otp-form').waitFor({ state: 'visible' });
      await screenshot(page, '04-otp-page-after-password');
      // The binding spent the current step; the gateway accepts ±1 step.
      lastStep = Math.max(stepOf(Date.now() / 1000 + TOTP_STEP_SECONDS), bindStep + 1);
      await page.locator('#code').fill(totpAtStep(secret, lastStep));
      response = await clickAndWait(page, page.locator('#otp-submit'));
      assert.equal(response.status(), 200);
      url = where(page);
      assert.equal(url.pathname + url.search, TARGET, 'lands on the page first asked for');
      await page.locator('table#identity').waitFor({ state: 'visible' });
      assert.equal((await identity(page, 'x-menshen-user')).raw, creds.staff.username);
      assert.equal((await identity(page, 'x-menshen-auth-method')).raw, 'password+otp');
      await screenshot(page, '05-demo-app-password-otp');
    });

    it('binds teacher1@example.edu.tw from the login settings tab', async () => {
      let response = await page.goto(base + SETTINGS);
      assert.equal(response.status(), 200);
      let url = where(page);
      assert.equal(url.pathname, ACCOUNT_PATH);
      const table = page.locator('#settings-table');
      await table.waitFor({ state: 'visible' });
      assert.equal(await table.locator('tr#row-otp').count(), 1, 'the settings table has the OTP row');
      const row = table.locator('tr#row-oidc-google');
      assert.equal(await row.count(), 1, 'the settings table has the Google row');
      assert.match(await page.locator('#otp-status').textContent(), /✓/, 'OTP is marked bound');
      assert.match(await page.locator('#oidc-status-google').textContent(), /×/, 'Google is marked unbound');
      const bind = page.locator('#bind-google');
      await bind.waitFor({ state: 'visible' });
      assert.equal(await page.locator('#unbind-google').count(), 0, 'nothing to unbind yet');
      await screenshot(page, '06-settings-before-google');

      // Linking asks for the current password in the same form; a wrong one links nothing.
      const proof = page.locator('#current-proof-bind-google');
      await proof.waitFor({ state: 'visible' });
      assert.equal(
        (await page.locator('label[for="current-proof-bind-google"]').textContent()).trim(),
        '目前的密碼',
      );
      await proof.fill('not-the-password');
      response = await clickAndWait(page, bind);
      assert.equal(response.status(), 200);
      url = where(page);
      assert.equal(url.pathname, ACCOUNT_PATH, 'a wrong password stays on the settings');
      assert.equal(url.searchParams.get('msg'), 'reauth_wrong');
      assert.match(await page.locator('#message').textContent(), /目前的密碼（或驗證APP的密碼）錯誤/);
      assert.match(await page.locator('#oidc-status-google').textContent(), /×/, 'still unbound');
      await screenshot(page, '06b-settings-wrong-password');

      await page.locator('#current-proof-bind-google').fill(creds.staff.password);
      response = await clickAndWait(page, page.locator('#bind-google'));
      assert.equal(response.status(), 200, 'the provider login form is served with 200');
      response = await signInAtProvider(page, BOUND_ACCOUNT, '07-provider-login-bind');
      assert.equal(response.status(), 200);
      url = where(page);
      assert.equal(url.pathname, ACCOUNT_PATH, 'the provider sends the browser back to the settings');
      assert.equal(url.searchParams.get('tab'), 'settings');
      assert.equal(url.searchParams.get('msg'), 'bound');
      assert.equal(url.searchParams.get('p'), 'google');
      const status = page.locator('#oidc-status-google');
      await status.waitFor({ state: 'visible' });
      assert.match(await status.textContent(), /✓/, 'Google is marked bound');
      assert.ok(
        (await page.locator('tr#row-oidc-google').textContent()).includes(BOUND_ACCOUNT.login),
        'the bound provider account is shown',
      );
      await page.locator('#unbind-google').waitFor({ state: 'visible' });
      assert.equal(await page.locator('#bind-google').count(), 0, 'no bind button once bound');
      const message = page.locator('#message');
      await message.waitFor({ state: 'visible' });
      await screenshot(page, '08-settings-google-bound');

      // Binding keeps this session (it may end the account's others).
      assert.ok(await sessionCookieOf(context), 'still signed in after binding');
      await page.goto(base + TARGET);
      assert.equal(where(page).pathname + where(page).search, TARGET, 'the app is still reachable');
      assert.equal((await identity(page, 'x-menshen-auth-method')).raw, 'password+otp');
    });

    it('logs out', async () => {
      const response = await page.goto(`${base}/.menshen/`);
      assert.equal(response.status(), 200);
      const logout = page.locator('#logout-submit');
      await logout.waitFor({ state: 'visible' });
      await clickAndWait(page, logout);
      assert.equal(where(page).pathname, LOGIN_PATH, 'logout lands on the login page');
      await page.locator('#login-form').waitFor({ state: 'visible' });
      await screenshot(page, '09-after-logout');
      await page.goto(base + TARGET);
      assert.equal(where(page).pathname, LOGIN_PATH, 'the app asks for a login again after logout');
    });

    it('logs in with the Google帳號登入 button, then OTP, and reaches the app', async () => {
      let response = await page.goto(base + TARGET);
      let url = where(page);
      assert.equal(url.pathname, LOGIN_PATH);
      assert.equal(url.searchParams.get('rd'), TARGET);
      const button = await googleButton(page, TARGET);
      await screenshot(page, '10-login-page-google-button');

      response = await clickAndWait(page, button);
      // The provider may still have teacher1's session from the binding (SSO): then it answers
      // at once with a code and the browser is back on the gateway without seeing its form.
      if (new URL(page.url()).origin === issuer) {
        response = await signInAtProvider(page, BOUND_ACCOUNT, '11-provider-login');
      } else {
        console.log('the provider remembered its session and skipped its login form');
      }
      assert.equal(response.status(), 200);
      url = where(page);
      assert.equal(url.pathname, OTP_PATH, 'a bound provider account still has to give the OTP code');
      await page.locator('#otp-form').waitFor({ state: 'visible' });
      const halfSession = await sessionCookieOf(context);
      assert.ok(halfSession, 'a (half-logged-in) session cookie is set');
      await screenshot(page, '12-otp-page-after-google');

      // Nothing else is reachable before the code.
      await page.goto(`${base}/students`);
      assert.equal(where(page).pathname, OTP_PATH, '/students goes back to the OTP step');

      // A code for a step later than the one the password login spent: wait until that step
      // is now (or past), then use the code for now + 30 s (accepted within ±1 step).
      while (stepOf(Date.now() / 1000) < lastStep) {
        const wait = (lastStep * TOTP_STEP_SECONDS - Date.now() / 1000) * 1000 + 250;
        console.log(`waiting ${Math.ceil(wait / 1000)} s for the next TOTP step`);
        await sleep(Math.max(wait, 50));
      }
      const step = stepOf(Date.now() / 1000 + TOTP_STEP_SECONDS);
      assert.ok(step > lastStep, `a later step (${step} > ${lastStep})`);
      await page.locator('#code').fill(totpAtStep(secret, step));
      response = await clickAndWait(page, page.locator('#otp-submit'));
      lastStep = step;
      assert.equal(response.status(), 200);
      url = where(page);
      assert.equal(url.pathname + url.search, TARGET, 'lands on the page first asked for');
      await page.locator('table#identity').waitFor({ state: 'visible' });
      assert.equal((await identity(page, 'x-menshen-user')).raw, 'demo.staff');
      assert.equal((await identity(page, 'x-menshen-user')).raw, creds.staff.username);
      assert.equal((await identity(page, 'x-menshen-auth-method')).raw, 'oidc:google+otp');
      assert.equal((await identity(page, 'x-menshen-name')).decoded, '王小明', 'the gateway account, not the provider name');
      // The gateway's own session cookie must not leak to the legacy app. (The provider's
      // `_session` may: on loopback both share the host 127.0.0.1, and cookies ignore ports.)
      const forwardedCookie = page.locator('#headers tr[data-header="cookie"] td.value');
      if ((await forwardedCookie.count()) > 0) {
        assert.doesNotMatch(await forwardedCookie.textContent(), /(^|;\s*)menshen=/, 'session cookie not forwarded');
      }
      await screenshot(page, '13-demo-app-google-otp');
      const cookie = await sessionCookieOf(context);
      assert.ok(cookie?.httpOnly, 'session cookie is HttpOnly');
      assert.notEqual(cookie.value, halfSession.value, 'the session id changes after the OTP step');
    });
  });

  // Last: a failed login from 127.0.0.1 may make the password form ask for a captcha.
  describe('a provider account that was never bound', () => {
    it('gets the 403 error page and no session', async () => {
      const { context, page } = await newPage();
      try {
        await page.goto(base + TARGET);
        assert.equal(where(page).pathname, LOGIN_PATH);
        const button = await googleButton(page, TARGET);
        let response = await clickAndWait(page, button);
        assert.equal(response.status(), 200);
        // A fresh browser context: the provider has no session for it and shows its form.
        response = await signInAtProvider(page, UNBOUND_ACCOUNT, '14-provider-login-unbound');
        assert.equal(response.status(), 403, 'an unbound provider account is refused with 403');
        const url = where(page);
        assert.equal(url.pathname, OIDC_CALLBACK_PATH, 'the error page is the callback itself (no redirect)');
        const title = page.locator('#error-title');
        await title.waitFor({ state: 'visible' });
        const text = (await title.textContent()).trim();
        assert.match(text, /Google/, `the error names the provider (got: ${text})`);
        assert.equal(await page.locator('#identity').count(), 0, 'the legacy app was not reached');
        assert.equal(await sessionCookieOf(context), undefined, 'no session cookie');
        await screenshot(page, '15-error-unbound-google');

        await page.goto(base + TARGET);
        assert.equal(where(page).pathname, LOGIN_PATH, 'the app still asks for a login');
        // And nothing was started on the server either: the OTP step is not reachable.
        const api = await playwrightRequest.newContext({ storageState: await context.storageState() });
        try {
          const otp = await api.get(`${base}${OTP_PATH}`, { maxRedirects: 0, headers: { Accept: 'text/html' } });
          assert.notEqual(otp.status(), 200, 'no half-logged-in session for the OTP page');
        } finally {
          await api.dispose();
        }
      } finally {
        await context.close();
      }
    });
  });
});
