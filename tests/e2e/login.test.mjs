// End-to-end test of the Menshen demo in a real browser (Debian's headless Chromium, driven by
// playwright-core; no browser is ever downloaded).
//
// It starts `menshen demo` on a free loopback port, reads the demo accounts from its stdout and
// walks the first-time login the way a person would: redirect to the login page, the password,
// the forced binding page, binding an authenticator (the TOTP code is computed here from the
// secret the page shows), logging in again with password and OTP code, the identity headers the
// legacy app receives, the role rule on /admin/ (an AA account binds its OTP too), logout, and
// last a wrong password, after which the login form asks for a captcha. The wrong password comes
// last because the demo shows the captcha after any failure from the same address, and only the
// server knows its answer.
// Screenshots of every step go to $MENSHEN_TEST_OUTPUT/e2e/login/ (default
// <repo>/test-output/e2e/login/), a directory of its own whose *.png files it clears when it
// starts: the other test files run at the same time, each with its own directory.
// The plumbing (starting the demo, the browser, TOTP codes, the steps the OIDC test takes too)
// is in helpers.mjs.
//
// Environment:
//   MENSHEN_BIN          the menshen binary (default <repo>/target/debug/menshen, or
//                        $CARGO_TARGET_DIR/debug/menshen)
//   MENSHEN_TEST_OUTPUT  where test artefacts go (default <repo>/test-output)
//   CHROMIUM             the Chromium executable (default /usr/bin/chromium)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request as playwrightRequest } from 'playwright-core';
import {
  BIND_OTP_PATH,
  base32Decode,
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

const TARGET = '/students?id=7';

describe('menshen demo in headless Chromium', { timeout: 300_000 }, () => {
  // The demo is killed when the test process exits, even if the runner dies between hooks
  // (startProcess in helpers.mjs sees to that).
  let demo;
  let creds;
  let base;
  let browser;
  const shots = screenshots('login');
  const { screenshot } = shots;
  const { where, sessionCookieOf, loginVia, readBindOtpPage } = gatewayPages(() => base);
  const newPage = () => newPageIn(browser);

  /**
   * Submits the binding code for now, and checks the gateway ends the session and sends the
   * browser to log in again with the bound-message.
   */
  async function submitBindCode(page, context, secret) {
    await page.locator('#code').fill(totp(secret, Date.now() / 1000));
    const response = await clickAndWait(page, page.locator('#bind-submit'));
    assert.equal(response.status(), 200, 'the login page after binding is served with 200');
    const url = where(page);
    assert.equal(url.pathname, LOGIN_PATH, 'a correct code leads back to the login page');
    assert.equal(url.searchParams.get('bound'), '1');
    const message = page.locator('#message');
    await message.waitFor({ state: 'visible' });
    const text = (await message.textContent()).trim();
    assert.ok(text.includes('綁定完成，請使用已綁定方式重新登入'), `bound message is shown (got: ${text})`);
    assert.ok(text.includes('OTP驗證綁定成功'), `the manual's OTP success message (got: ${text})`);
    assert.equal(await message.getAttribute('class'), 'message message-success');
    assert.equal(await sessionCookieOf(context), undefined, 'binding ended the session');
  }

  /**
   * On the OTP page: submits the code for the next step (the binding already spent the current
   * one; the gateway accepts ±1 step) and returns the response of the page it leads to.
   */
  async function submitOtp(page, secret) {
    assert.equal(where(page).pathname, OTP_PATH);
    await page.locator('#otp-form').waitFor({ state: 'visible' });
    await page.locator('#code').fill(totp(secret, Date.now() / 1000 + TOTP_STEP_SECONDS));
    return clickAndWait(page, page.locator('#otp-submit'));
  }

  before(async () => {
    shots.clear();
    const port = await freePort();
    demo = startDemo(port);
    creds = await demo.ready;
    base = `http://127.0.0.1:${port}`;
    assert.equal(new URL(creds.url).origin, base, 'demo prints the URL it listens on');
    browser = await launchChromium();
  }, { timeout: 120_000 });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await stopProcess(demo?.child);
      shots.report();
    }
  });

  describe('first login as staff: password, forced OTP binding, password + OTP', () => {
    let context;
    let page;
    let secret;
    let sessionCookie;

    before(async () => {
      ({ context, page } = await newPage());
    });
    after(async () => {
      await context?.close();
    });

    it('redirects an anonymous request to the login page, keeping the target in rd', async () => {
      const response = await page.goto(base + TARGET);
      const url = where(page);
      assert.equal(url.pathname, LOGIN_PATH);
      assert.equal(url.searchParams.get('rd'), TARGET, 'rd carries the original path and query');
      assert.equal(response.status(), 200, 'the login page itself is served with 200');
      await page.locator('#login-form').waitFor({ state: 'visible' });
      assert.equal((await page.locator('label[for="username"]').textContent()).trim(), '帳號');
      assert.equal((await page.locator('label[for="password"]').textContent()).trim(), '密碼');
      assert.equal(await page.locator('#message').count(), 0, 'no message before any attempt');
      assert.equal(await page.locator('#captcha-image').count(), 0, 'no captcha before any failure');
      assert.equal(
        await page.locator('#login-form input[name="rd"]').inputValue(),
        TARGET,
        'the form carries rd on to the POST',
      );
      await screenshot(page, '01-login-page-after-redirect');
    });

    it('sends an account without a second factor to the forced binding page', async () => {
      const response = await submitLogin(page, creds.staff.username, creds.staff.password);
      assert.equal(response.status(), 200);
      assert.equal(where(page).pathname, BIND_PATH, 'the right password leads to the binding page');
      const cookie = await sessionCookieOf(context);
      assert.ok(cookie, 'a (half-logged-in) session cookie is set');
      assert.ok(cookie.httpOnly, 'session cookie is HttpOnly');

      const table = page.locator('#bind-methods');
      await table.waitFor({ state: 'visible' });
      assert.equal(await table.locator('tbody tr').count(), 2, 'the table lists OTP and certificate');
      const notes = page.locator('#bind-notes li');
      assert.equal(await notes.count(), 3, 'three notes above the table');
      const notesText = await page.locator('#bind-notes').textContent();
      assert.ok(notesText.includes('請務必選擇一種驗證方式做綁定'), `notes say a method must be bound (got: ${notesText})`);
      const bindOtp = page.locator('#bind-otp');
      await bindOtp.waitFor({ state: 'visible' });
      assert.equal(await bindOtp.getAttribute('href'), BIND_OTP_PATH);
      const otpStatus = (await page.locator('#otp-status').textContent()).trim();
      assert.match(otpStatus, /×/, `OTP status is marked ×, got ${otpStatus}`);
      assert.match(otpStatus, /未綁定/, `OTP status says 未綁定, got ${otpStatus}`);
      assert.ok(await page.locator('#bind-certificate').isDisabled(), 'certificate binding is not offered yet for staff');
      await screenshot(page, '02-bind-page-forced-staff');
    });

    it('sends the half-logged-in session back to the binding page from anywhere else', async () => {
      await page.goto(`${base}/students`);
      assert.equal(where(page).pathname, BIND_PATH, '/students goes back to /.menshen/bind');
      await page.goto(`${base}/.menshen/`);
      assert.equal(where(page).pathname, BIND_PATH, 'the signed-in page goes back to /.menshen/bind');
      assert.equal(await page.locator('#identity').count(), 0, 'the legacy app was not reached');
      await page.locator('#bind-methods').waitFor({ state: 'visible' });
    });

    it('shows the OTP binding page with a QR code and the secret', async () => {
      await clickAndWait(page, page.locator('#bind-otp'));
      secret = await readBindOtpPage(page, creds.staff);
      await screenshot(page, '03-bind-otp-page-staff');
    });

    it('binds the authenticator with a correct code and asks to log in again', async () => {
      const halfSession = (await sessionCookieOf(context)).value;
      await submitBindCode(page, context, secret);
      assert.equal(await page.locator('#login-form').count(), 1, 'the login form is shown again');
      await screenshot(page, '04-login-after-binding');

      // The pre-binding session is ended on the server, not only forgotten by the browser.
      const api = await playwrightRequest.newContext();
      try {
        const replay = await api.get(`${base}/.menshen/bind`, {
          headers: { Cookie: `${SESSION_COOKIE}=${halfSession}`, Accept: 'text/html' },
          maxRedirects: 0,
        });
        assert.equal(replay.status(), 302, 'the old session is not on the binding page any more');
        assert.equal(new URL(replay.headers().location, base).pathname, LOGIN_PATH);
      } finally {
        await api.dispose();
      }
    });

    it('asks for the OTP code after the password now that OTP is bound', async () => {
      const response = await loginVia(page, TARGET, creds.staff);
      assert.equal(response.status(), 200);
      assert.equal(where(page).pathname, OTP_PATH, 'the right password leads to the OTP step');
      await page.locator('#otp-form').waitFor({ state: 'visible' });
      assert.equal((await page.locator('#display-name').textContent()).trim(), '王小明');
      await screenshot(page, '05-otp-page-staff');

      // Nothing else is reachable before the code.
      await page.goto(`${base}/students`);
      assert.equal(where(page).pathname, OTP_PATH, '/students goes back to the OTP step');
    });

    it('accepts the code and lands on the requested page with identity headers', async () => {
      const response = await submitOtp(page, secret);
      const url = where(page);
      assert.equal(url.pathname + url.search, TARGET, 'lands on the page first asked for');
      assert.equal(response.status(), 200);
      await page.locator('#identity').waitFor({ state: 'visible' });
      assert.equal((await page.locator('#path').textContent()).trim(), TARGET, 'the demo app served the path');

      const method = await identity(page, 'x-menshen-auth-method');
      assert.equal(method.raw, 'password+otp');
      const user = await identity(page, 'x-menshen-user');
      assert.equal(user.raw, 'demo.staff');
      assert.equal(user.raw, creds.staff.username);
      const name = await identity(page, 'x-menshen-name');
      assert.equal(name.decoded, '王小明');
      assert.equal(decodeURIComponent(name.raw), '王小明', 'raw name header is UTF-8 percent-encoded');
      assert.match(name.raw, /^[\x21-\x7e]+$/, 'raw name header is ASCII only');
      const roles = await identity(page, 'x-menshen-roles');
      assert.equal(roles.raw, 'staff');
      const school = await identity(page, 'x-menshen-school');
      assert.notEqual(school.raw, '', 'school header is sent');

      // The gateway's own session cookie must not leak to the legacy app.
      const forwardedCookie = page.locator('#headers tr[data-header="cookie"] td.value');
      if ((await forwardedCookie.count()) > 0) {
        assert.doesNotMatch(await forwardedCookie.textContent(), /(^|;\s*)menshen=/, 'session cookie not forwarded');
      }

      const cookie = await sessionCookieOf(context);
      assert.ok(cookie, 'session cookie "menshen" is set');
      assert.ok(cookie.httpOnly, 'session cookie is HttpOnly');
      sessionCookie = cookie.value;
      await screenshot(page, '06-demo-app-identity-staff');
    });

    it('denies /admin/ to staff with the 403 page', async () => {
      const response = await page.goto(`${base}/admin/`);
      assert.equal(response.status(), 403);
      assert.equal(where(page).pathname, '/admin/', 'no redirect on 403');
      assert.equal(await page.locator('#identity').count(), 0, 'the legacy app was not reached');
      const body = await page.locator('main').textContent();
      assert.match(body, /403/, '403 page shows the status code');
      assert.match(body, /沒有存取權限/, '403 page explains the refusal');
      await screenshot(page, '07-admin-forbidden-staff');
    });

    it('asks for the current password before re-binding OTP from a signed-in session', async () => {
      let response = await page.goto(`${base}/.menshen/bind/otp`);
      assert.equal(response.status(), 200);
      const proof = page.locator('#current-proof');
      await proof.waitFor({ state: 'visible' });
      assert.equal((await page.locator('label[for="current-proof"]').textContent()).trim(), '目前的密碼');
      assert.equal(await proof.getAttribute('type'), 'password');
      // A right code for the new secret with a wrong password changes nothing.
      const shown = base32Decode(await page.locator('#otp-secret').textContent());
      await page.locator('#code').fill(totp(shown, Date.now() / 1000));
      await proof.fill('not-the-password');
      response = await clickAndWait(page, page.locator('#bind-submit'));
      assert.equal(response.status(), 401);
      assert.equal(where(page).pathname, BIND_OTP_PATH, 'the same page, nothing bound');
      assert.match(await page.locator('#message').textContent(), /目前的密碼（或驗證APP的密碼）錯誤/);
      await screenshot(page, '06c-rebind-otp-wrong-password');
      // The session still works: nothing was changed and nobody was signed out.
      response = await page.goto(base + TARGET);
      assert.equal(response.status(), 200);
      assert.equal(where(page).pathname + where(page).search, TARGET);
    });

    it('shows the signed-in page and logs out', async () => {
      const response = await page.goto(`${base}/.menshen/`);
      assert.equal(response.status(), 200);
      assert.equal(where(page).pathname, '/.menshen/');
      const logout = page.locator('#logout-submit');
      await logout.waitFor({ state: 'visible' });
      assert.ok(
        (await page.locator('body').textContent()).includes(creds.staff.username),
        'signed-in page names the account',
      );
      await screenshot(page, '08-signed-in-page');

      await clickAndWait(page, logout);
      assert.equal(where(page).pathname, LOGIN_PATH, 'logout lands on the login page');
      await page.locator('#login-form').waitFor({ state: 'visible' });
      await screenshot(page, '09-after-logout');
    });

    it('after logout, the app redirects to login again and the old session is dead', async () => {
      await page.goto(`${base}/students`);
      const url = where(page);
      assert.equal(url.pathname, LOGIN_PATH, '/students redirects to login after logout');
      assert.equal(url.searchParams.get('rd'), '/students');
      await screenshot(page, '10-students-after-logout');

      // Replaying the old cookie must not work either: the session is ended on the server,
      // not only forgotten by the browser.
      assert.ok(sessionCookie, 'a session cookie was captured at login');
      const api = await playwrightRequest.newContext();
      try {
        const replay = await api.get(`${base}/students?id=7`, {
          headers: { Cookie: `${SESSION_COOKIE}=${sessionCookie}`, Accept: 'text/html' },
          maxRedirects: 0,
        });
        assert.notEqual(replay.status(), 200, 'old session cookie no longer reaches the app');
        assert.ok([302, 303, 401].includes(replay.status()), `old cookie is sent to login (got ${replay.status()})`);
        if (replay.status() !== 401) {
          assert.equal(new URL(replay.headers().location, base).pathname, LOGIN_PATH, 'old cookie is sent to login');
        }
      } finally {
        await api.dispose();
      }
    });
  });

  describe('role rule on /admin/', () => {
    it('makes an AA account bind OTP (no certificate), then lets it into /admin/', async () => {
      const { context, page } = await newPage();
      try {
        let response = await loginVia(page, '/admin/', creds.aa);
        assert.equal(response.status(), 200);
        assert.equal(where(page).pathname, BIND_PATH, 'an AA account without OTP must bind first');
        await page.locator('#bind-methods').waitFor({ state: 'visible' });
        assert.equal(await page.locator('#bind-certificate').count(), 0, 'no certificate binding for AA');
        const note = (await page.locator('#certificate-note').textContent()).trim();
        assert.ok(note.includes('學校管理者(AA帳號)僅提供 OTP 驗證綁定'), `AA certificate note (got: ${note})`);
        await page.goto(`${base}/admin/`);
        assert.equal(where(page).pathname, BIND_PATH, '/admin/ goes back to the binding page before binding');
        await screenshot(page, '11-bind-page-forced-aa');

        await clickAndWait(page, page.locator('#bind-otp'));
        const secret = await readBindOtpPage(page, creds.aa);
        await screenshot(page, '12-bind-otp-page-aa');
        await submitBindCode(page, context, secret);

        response = await loginVia(page, '/admin/', creds.aa);
        assert.equal(response.status(), 200);
        assert.equal(where(page).pathname, OTP_PATH, 'the AA password now leads to the OTP step');
        response = await submitOtp(page, secret);
        assert.equal(response.status(), 200);
        assert.equal(where(page).pathname, '/admin/');
        assert.equal((await page.locator('#path').textContent()).trim(), '/admin/');
        assert.equal((await identity(page, 'x-menshen-user')).raw, creds.aa.username);
        assert.equal((await identity(page, 'x-menshen-user')).raw, 'demo.aa');
        assert.equal((await identity(page, 'x-menshen-auth-method')).raw, 'password+otp');
        const roles = (await identity(page, 'x-menshen-roles')).raw.split(',');
        assert.ok(roles.includes('aa'), `roles include aa (got ${roles})`);
        await screenshot(page, '13-admin-allowed-aa');
      } finally {
        await context.close();
      }
    });
  });

  // Last: after this failure every login form from 127.0.0.1 asks for a captcha that only the
  // server can read.
  describe('wrong password', () => {
    it('is rejected with a message, and the login form then asks for a captcha', async () => {
      const { context, page } = await newPage();
      try {
        await page.goto(base + TARGET);
        assert.equal(where(page).pathname, LOGIN_PATH);
        assert.equal(await page.locator('#captcha-image').count(), 0, 'no captcha before the failure');
        const response = await submitLogin(page, creds.staff.username, `${creds.staff.password}-wrong`);
        assert.equal(response.status(), 401, 'a failed login answers 401');
        assert.equal(where(page).pathname, LOGIN_PATH, 'no redirect after a wrong password');
        const message = page.locator('#message');
        await message.waitFor({ state: 'visible' });
        const text = (await message.textContent()).trim();
        assert.match(text, /密碼錯誤|錯誤/, `error message is shown (got: ${text})`);
        assert.equal(await sessionCookieOf(context), undefined, 'no session cookie after a wrong password');
        // The form is shown again, still aimed at the original target, now with a captcha.
        assert.equal(await page.locator('#login-form input[name="rd"]').inputValue(), TARGET);
        await page.locator('#captcha').waitFor({ state: 'visible' });
        await page.locator('#captcha-image').waitFor({ state: 'visible' });
        await screenshot(page, '14-login-wrong-password');

        // A fresh login page from the same address asks for the captcha too.
        await page.goto(base + TARGET);
        assert.equal(where(page).pathname, LOGIN_PATH);
        const image = page.locator('#captcha-image');
        await image.waitFor({ state: 'visible' });
        await page.locator('#captcha').waitFor({ state: 'visible' });
        assert.ok(
          await image.evaluate((img) => img.complete && img.naturalWidth > 0),
          'the browser rendered the captcha image',
        );
        const src = await image.getAttribute('src');
        assert.ok(src, 'captcha image has a src');
        const picture = await context.request.get(new URL(src, page.url()).href);
        assert.equal(picture.status(), 200, `GET ${src} answers 200`);
        assert.match(picture.headers()['content-type'] || '', /^image\/png\b/, 'the captcha is served as image/png');
        const bytes = await picture.body();
        assert.ok(
          bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
          'the captcha body is a PNG',
        );
        await screenshot(page, '15-login-page-with-captcha');

        // Tab order: 帳號, 密碼, 驗證碼, 登入, then 更換圖片; and 更換圖片 keeps the typed name.
        await page.locator('#username').focus();
        const order = ['username'];
        for (let i = 0; i < 4; i += 1) {
          await page.keyboard.press('Tab');
          order.push(await page.evaluate(() => document.activeElement.id));
        }
        assert.deepEqual(order, ['username', 'password', 'captcha', 'login-submit', 'captcha-refresh']);
        await page.locator('#username').fill('someone.typed');
        const before = await page.locator('#captcha-image').getAttribute('src');
        await clickAndWait(page, page.locator('#captcha-refresh'));
        assert.equal(await page.locator('#username').inputValue(), 'someone.typed', '更換圖片 keeps the name');
        assert.notEqual(await page.locator('#captcha-image').getAttribute('src'), before, 'a new picture');
      } finally {
        await context.close();
      }
    });
  });
});
