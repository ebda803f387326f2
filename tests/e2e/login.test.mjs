// End-to-end test of the Menshen demo in a real browser (Debian's headless Chromium, driven by
// playwright-core; no browser is ever downloaded).
//
// It starts `menshen demo` on a free loopback port, reads the demo accounts from its stdout and
// walks the password login the way a user would: redirect to the login page, a wrong password,
// a right one, the identity headers the legacy app receives, the role rule on /admin/, logout.
// Screenshots of every step go to $MENSHEN_TEST_OUTPUT/e2e/ (default <repo>/test-output/e2e/).
//
// Environment:
//   MENSHEN_BIN          the menshen binary (default <repo>/target/debug/menshen)
//   MENSHEN_TEST_OUTPUT  where test artefacts go (default <repo>/test-output)
//   CHROMIUM             the Chromium executable (default /usr/bin/chromium)

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, request as playwrightRequest } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const MENSHEN_BIN = process.env.MENSHEN_BIN || path.join(REPO, 'target', 'debug', 'menshen');
const OUTPUT_DIR = path.join(process.env.MENSHEN_TEST_OUTPUT || path.join(REPO, 'test-output'), 'e2e');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
];
const STARTUP_TIMEOUT_MS = 60_000;
const LOGIN_PATH = '/.menshen/login';
const TARGET = '/students?id=7';

/** A TCP port on 127.0.0.1 that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * Spawns `menshen demo` and resolves once its stdout has printed the URL and both accounts.
 * Rejects, with everything the process printed, if that takes longer than STARTUP_TIMEOUT_MS
 * or the process exits first.
 */
function startDemo(port) {
  const child = spawn(MENSHEN_BIN, ['demo', '--listen', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });

  const ready = new Promise((resolve, reject) => {
    const fail = (why) => {
      clearTimeout(timer);
      reject(
        new Error(
          `menshen demo did not start: ${why}\n` +
            `binary: ${MENSHEN_BIN}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr.slice(-4000)}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`no credentials on stdout within ${STARTUP_TIMEOUT_MS / 1000} s`), STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const open = stdout.match(/^\s*Open:\s+(\S+)/m);
      const staff = stdout.match(/^\s*Staff:\s+(\S+)\s+\/\s+(\S+)\s*$/m);
      const aa = stdout.match(/^\s*AA:\s+(\S+)\s+\/\s+(\S+)\s*$/m);
      if (open && staff && aa) {
        clearTimeout(timer);
        resolve({
          url: open[1],
          staff: { username: staff[1], password: staff[2] },
          aa: { username: aa[1], password: aa[2] },
        });
      }
    });
    child.on('error', (err) => fail(`spawn failed: ${err.message}`));
    child.on('exit', (code, signal) => fail(`process exited early (code ${code}, signal ${signal})`));
  });
  return { child, ready, output: () => ({ stdout, stderr }) };
}

/** Stops the demo: SIGTERM, then SIGKILL if it has not exited after 5 s. */
async function stopDemo(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

describe('menshen demo in headless Chromium', { timeout: 240_000 }, () => {
  let demo;
  let creds;
  let base;
  let browser;
  const shots = [];

  // Backstop: never leave the demo running, even if the runner dies between hooks.
  const killOnExit = () => {
    if (demo?.child && demo.child.exitCode === null) demo.child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  async function screenshot(page, name) {
    const file = path.join(OUTPUT_DIR, `${name}.png`);
    await page.screenshot({ path: file, fullPage: true });
    shots.push(file);
    return file;
  }

  async function newPage() {
    const context = await browser.newContext({
      locale: 'zh-TW',
      viewport: { width: 1100, height: 800 },
    });
    const page = await context.newPage();
    page.setDefaultTimeout(15_000);
    return { context, page };
  }

  /** Value cells of the demo app's identity table for one header. */
  async function identity(page, header) {
    const row = page.locator(`#identity tr[data-header="${header}"]`);
    assert.equal(await row.count(), 1, `identity table has exactly one row for ${header}`);
    return {
      raw: (await row.locator('td.value').textContent()).trim(),
      decoded: (await row.locator('td.decoded').textContent()).trim(),
    };
  }

  /** Fills and submits the login form on the current page, waiting for the response page. */
  async function submitLogin(page, username, password) {
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    const [response] = await Promise.all([
      page.waitForNavigation({ waitUntil: 'load' }),
      page.locator('#login-submit').click(),
    ]);
    return response;
  }

  /** Logs in from scratch in `page` by way of `target`, and returns the final response. */
  async function loginVia(page, target, account) {
    await page.goto(base + target);
    assert.equal(new URL(page.url()).pathname, LOGIN_PATH, `${target} redirects to the login page`);
    return submitLogin(page, account.username, account.password);
  }

  before(async () => {
    assert.ok(existsSync(MENSHEN_BIN), `menshen binary not found at ${MENSHEN_BIN} (build it or set MENSHEN_BIN)`);
    assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const port = await freePort();
    demo = startDemo(port);
    creds = await demo.ready;
    base = `http://127.0.0.1:${port}`;
    assert.equal(new URL(creds.url).origin, base, 'demo prints the URL it listens on');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  }, { timeout: 120_000 });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await stopDemo(demo?.child);
      process.off('exit', killOnExit);
      if (shots.length) console.log(`screenshots:\n  ${shots.join('\n  ')}`);
    }
  });

  describe('password login as staff', () => {
    let context;
    let page;
    let sessionCookie;

    before(async () => {
      ({ context, page } = await newPage());
    });
    after(async () => {
      await context?.close();
    });

    it('redirects an anonymous request to the login page, keeping the target in rd', async () => {
      const response = await page.goto(base + TARGET);
      const url = new URL(page.url());
      assert.equal(url.origin, base);
      assert.equal(url.pathname, LOGIN_PATH);
      assert.equal(url.searchParams.get('rd'), TARGET, 'rd carries the original path and query');
      assert.equal(response.status(), 200, 'the login page itself is served with 200');
      await page.locator('#login-form').waitFor({ state: 'visible' });
      assert.equal((await page.locator('label[for="username"]').textContent()).trim(), '帳號');
      assert.equal((await page.locator('label[for="password"]').textContent()).trim(), '密碼');
      assert.equal(await page.locator('#message').count(), 0, 'no message before any attempt');
      assert.equal(
        await page.locator('#login-form input[name="rd"]').inputValue(),
        TARGET,
        'the form carries rd on to the POST',
      );
      await screenshot(page, '01-login-page-after-redirect');
    });

    it('rejects a wrong password with a message and stays on the login page', async () => {
      const response = await submitLogin(page, creds.staff.username, `${creds.staff.password}-wrong`);
      assert.equal(response.status(), 401, 'a failed login answers 401');
      const url = new URL(page.url());
      assert.equal(url.pathname, LOGIN_PATH, 'no redirect after a wrong password');
      const message = page.locator('#message');
      await message.waitFor({ state: 'visible' });
      const text = (await message.textContent()).trim();
      assert.match(text, /密碼錯誤|錯誤/, `error message is shown (got: ${text})`);
      const cookies = await context.cookies(base);
      assert.ok(!cookies.some((c) => c.name === 'menshen'), 'no session cookie after a wrong password');
      // The form is shown again, still aimed at the original target.
      assert.equal(await page.locator('#login-form input[name="rd"]').inputValue(), TARGET);
      await screenshot(page, '02-login-wrong-password');
    });

    it('logs in and lands on the requested page of the legacy app with identity headers', async () => {
      const response = await submitLogin(page, creds.staff.username, creds.staff.password);
      const url = new URL(page.url());
      assert.equal(url.origin, base);
      assert.equal(url.pathname + url.search, TARGET, 'lands on the page first asked for');
      assert.equal(response.status(), 200);
      await page.locator('#identity').waitFor({ state: 'visible' });
      assert.equal((await page.locator('#path').textContent()).trim(), TARGET, 'the demo app served the path');

      const user = await identity(page, 'x-menshen-user');
      assert.equal(user.raw, 'demo.staff');
      assert.equal(user.raw, creds.staff.username);
      const method = await identity(page, 'x-menshen-auth-method');
      assert.equal(method.raw, 'password');
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

      const cookie = (await context.cookies(base)).find((c) => c.name === 'menshen');
      assert.ok(cookie, 'session cookie "menshen" is set');
      assert.ok(cookie.httpOnly, 'session cookie is HttpOnly');
      sessionCookie = cookie.value;
      await screenshot(page, '03-demo-app-identity-staff');
    });

    it('denies /admin/ to staff with the 403 page', async () => {
      const response = await page.goto(`${base}/admin/`);
      assert.equal(response.status(), 403);
      assert.equal(new URL(page.url()).pathname, '/admin/', 'no redirect on 403');
      assert.equal(await page.locator('#identity').count(), 0, 'the legacy app was not reached');
      const body = await page.locator('main').textContent();
      assert.match(body, /403/, '403 page shows the status code');
      assert.match(body, /沒有存取權限/, '403 page explains the refusal');
      await screenshot(page, '04-admin-forbidden-staff');
    });

    it('shows the signed-in page and logs out', async () => {
      const response = await page.goto(`${base}/.menshen/`);
      assert.equal(response.status(), 200);
      const logout = page.locator('#logout-submit');
      await logout.waitFor({ state: 'visible' });
      assert.ok(
        (await page.locator('body').textContent()).includes(creds.staff.username),
        'signed-in page names the account',
      );
      await screenshot(page, '05-signed-in-page');

      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), logout.click()]);
      assert.equal(new URL(page.url()).pathname, LOGIN_PATH, 'logout lands on the login page');
      await page.locator('#login-form').waitFor({ state: 'visible' });
      await screenshot(page, '06-after-logout');
    });

    it('after logout, the app redirects to login again and the old session is dead', async () => {
      await page.goto(`${base}/students`);
      const url = new URL(page.url());
      assert.equal(url.pathname, LOGIN_PATH, '/students redirects to login after logout');
      assert.equal(url.searchParams.get('rd'), '/students');
      await screenshot(page, '07-students-after-logout');

      // Replaying the old cookie must not work either: the session is ended on the server,
      // not only forgotten by the browser.
      assert.ok(sessionCookie, 'a session cookie was captured at login');
      const api = await playwrightRequest.newContext();
      try {
        const replay = await api.get(`${base}/students?id=7`, {
          headers: { Cookie: `menshen=${sessionCookie}`, Accept: 'text/html' },
          maxRedirects: 0,
        });
        assert.notEqual(replay.status(), 200, 'old session cookie no longer reaches the app');
        assert.ok([302, 303, 401].includes(replay.status()), `old cookie is sent to login (got ${replay.status()})`);
      } finally {
        await api.dispose();
      }
    });
  });

  describe('role rule on /admin/', () => {
    it('lets an AA account into /admin/', async () => {
      const { context, page } = await newPage();
      try {
        const response = await loginVia(page, '/admin/', creds.aa);
        assert.equal(response.status(), 200);
        const url = new URL(page.url());
        assert.equal(url.pathname, '/admin/');
        assert.equal((await page.locator('#path').textContent()).trim(), '/admin/');
        assert.equal((await identity(page, 'x-menshen-user')).raw, creds.aa.username);
        assert.equal((await identity(page, 'x-menshen-user')).raw, 'demo.aa');
        const roles = (await identity(page, 'x-menshen-roles')).raw.split(',');
        assert.ok(roles.includes('aa'), `roles include aa (got ${roles})`);
        await screenshot(page, '08-admin-allowed-aa');
      } finally {
        await context.close();
      }
    });
  });
});
