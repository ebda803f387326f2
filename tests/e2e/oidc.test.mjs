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
// TOTP codes are computed here from the secret the binding page shows. Each code is accepted
// once and only within ±1 step of now, so step 4 waits for a later step than step 1 used.
// Screenshots of every step go to $MENSHEN_TEST_OUTPUT/e2e/oidc/ (default
// <repo>/test-output/e2e/oidc/): a directory of its own, because login.test.mjs runs at the
// same time and clears the *.png files of $MENSHEN_TEST_OUTPUT/e2e/ when it starts.
//
// Environment:
//   MENSHEN_BIN          the menshen binary (default <repo>/target/debug/menshen)
//   MENSHEN_TEST_OUTPUT  where test artefacts go (default <repo>/test-output)
//   CHROMIUM             the Chromium executable (default /usr/bin/chromium)
// The provider needs tests/oidc/node_modules (run `npm ci` in tests/oidc).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium, request as playwrightRequest } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
const MENSHEN_BIN = process.env.MENSHEN_BIN || path.join(REPO, 'target', 'debug', 'menshen');
const OUTPUT_DIR = path.join(process.env.MENSHEN_TEST_OUTPUT || path.join(REPO, 'test-output'), 'e2e', 'oidc');
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
const OIDC_DIR = path.join(REPO, 'tests', 'oidc');
const PROVIDER_SCRIPT = path.join(OIDC_DIR, 'provider.mjs');
const CLIENT_ID = 'demo';
const CLIENT_SECRET = 'demo-secret';
const STARTUP_TIMEOUT_MS = 60_000;
const LOGIN_PATH = '/.menshen/login';
const TARGET = '/students?id=7';
const BIND_PATH = '/.menshen/bind';
const BIND_OTP_PATH = '/.menshen/bind/otp';
const OTP_PATH = '/.menshen/otp';
const ACCOUNT_PATH = '/.menshen/account';
const SETTINGS = `${ACCOUNT_PATH}?tab=settings`;
const OIDC_START_PATH = '/.menshen/oidc/google/start';
const OIDC_CALLBACK_PATH = '/.menshen/oidc/google/callback';
const GOOGLE_BUTTON = 'Google帳號登入';
const SESSION_COOKIE = 'menshen';
const TOTP_STEP_SECONDS = 30;
const BOUND_ACCOUNT = { login: 'teacher1@example.edu.tw', password: 'pw' };
const UNBOUND_ACCOUNT = { login: 'teacher2@example.edu.tw', password: 'pw' };

/** Decodes RFC 4648 base32 (no padding needed; spaces and case ignored). */
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  assert.match(clean, /^[A-Z2-7]+$/, `secret is base32 (got ${JSON.stringify(text)})`);
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    value = (value << 5) | alphabet.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The RFC 6238 time step of `unixSeconds`. */
function stepOf(unixSeconds) {
  return Math.floor(unixSeconds / TOTP_STEP_SECONDS);
}

/**
 * RFC 6238 TOTP (HMAC-SHA1, 30 s steps, 6 digits) of `secret` at time step `step`: HMAC over
 * the 8-byte big-endian step counter, then RFC 4226 dynamic truncation.
 */
function totpAtStep(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}

// RFC 6238 appendix B test vector (SHA-1, T = 59 s): the helper above must get it right, or
// every failure below would be about the test and not the gateway.
assert.equal(totpAtStep(Buffer.from('12345678901234567890'), stepOf(59)), '287082');

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
 * Spawns `command args` and resolves with `parse(stdout)` once that returns something. Rejects,
 * with everything the process printed, if that takes longer than STARTUP_TIMEOUT_MS or the
 * process exits first.
 */
function startProcess(label, command, args, options, parse) {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });

  const ready = new Promise((resolve, reject) => {
    let done = false;
    const fail = (why) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(
        new Error(
          `${label} did not start: ${why}\n` +
            `command: ${command} ${args.join(' ')}\n--- stdout ---\n${stdout}\n--- stderr ---\n${stderr.slice(-4000)}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`not ready within ${STARTUP_TIMEOUT_MS / 1000} s`), STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      if (done) return;
      const parsed = parse(stdout);
      if (parsed) {
        done = true;
        clearTimeout(timer);
        resolve(parsed);
      }
    });
    child.on('error', (err) => fail(`spawn failed: ${err.message}`));
    child.on('exit', (code, signal) => fail(`process exited early (code ${code}, signal ${signal})`));
  });
  return { child, ready, output: () => ({ stdout, stderr }) };
}

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
    { cwd: OIDC_DIR, env: { ...process.env, NO_COLOR: '1' } },
    (stdout) => {
      const m = stdout.match(/^READY (http:\/\/\S+)\s*$/m);
      return m ? { issuer: m[1] } : undefined;
    },
  );
}

/** Starts `menshen demo` with the provider as its "Google 帳號"; resolves with URL and accounts. */
function startDemo(port, issuer) {
  return startProcess(
    'menshen demo',
    MENSHEN_BIN,
    ['demo', '--listen', `127.0.0.1:${port}`, '--oidc-issuer', issuer, '--oidc-client-id', CLIENT_ID],
    { env: { ...process.env, NO_COLOR: '1', MENSHEN_DEMO_OIDC_SECRET: CLIENT_SECRET } },
    (stdout) => {
      const open = stdout.match(/^\s*Open:\s+(\S+)/m);
      const staff = stdout.match(/^\s*Staff:\s+(\S+)\s+\/\s+(\S+)\s*$/m);
      const aa = stdout.match(/^\s*AA:\s+(\S+)\s+\/\s+(\S+)\s*$/m);
      const oidc = stdout.match(/^\s*OpenID Connect:\s+(\S+)/m);
      if (!(open && staff && aa && oidc)) return undefined;
      return {
        url: open[1],
        issuer: oidc[1],
        staff: { username: staff[1], password: staff[2] },
        aa: { username: aa[1], password: aa[2] },
      };
    },
  );
}

/** Stops a child process: SIGTERM, then SIGKILL if it has not exited after 5 s. */
async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

describe('menshen demo with an OpenID Connect provider in headless Chromium', { timeout: 300_000 }, () => {
  let provider;
  let demo;
  let issuer;
  let creds;
  let base;
  let browser;
  const shots = [];

  // Backstop: never leave the demo or the provider running, even if the runner dies between hooks.
  const killOnExit = () => {
    for (const p of [demo, provider]) {
      if (p?.child && p.child.exitCode === null) p.child.kill('SIGKILL');
    }
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

  /** Path and query of the page's current URL, after checking it is still on the demo. */
  function where(page) {
    const url = new URL(page.url());
    assert.equal(url.origin, base, `still on the demo origin (at ${page.url()})`);
    return url;
  }

  /** The page's current URL, after checking it is on the provider. */
  function atProvider(page) {
    const url = new URL(page.url());
    assert.equal(url.origin, issuer, `on the provider's origin (at ${page.url()})`);
    return url;
  }

  async function sessionCookieOf(context) {
    return (await context.cookies(base)).find((c) => c.name === SESSION_COOKIE);
  }

  /** Clicks `locator` and waits for the page it leads to. */
  async function clickAndWait(page, locator) {
    const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()]);
    return response;
  }

  /** Fills and submits the login form on the current page, waiting for the response page. */
  async function submitLogin(page, username, password) {
    await page.locator('#username').fill(username);
    await page.locator('#password').fill(password);
    return clickAndWait(page, page.locator('#login-submit'));
  }

  /** Opens `target` anonymously, checks it lands on the login page with rd, and logs in. */
  async function loginVia(page, target, account) {
    await page.goto(base + target);
    const url = where(page);
    assert.equal(url.pathname, LOGIN_PATH, `${target} redirects to the login page`);
    assert.equal(url.searchParams.get('rd'), target, 'rd carries the original path and query');
    return submitLogin(page, account.username, account.password);
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

  /**
   * On the OTP binding page: checks the QR code and the manual key, and returns the secret
   * (bytes) read from #otp-secret.
   */
  async function readBindOtpPage(page, account) {
    assert.equal(where(page).pathname, BIND_OTP_PATH);
    const qr = page.locator('#otp-qr');
    await qr.waitFor({ state: 'visible' });
    assert.ok(
      await qr.evaluate((img) => img.complete && img.naturalWidth > 0),
      'the browser rendered the QR image',
    );
    assert.equal((await page.locator('#otp-account').textContent()).trim(), account.username);
    const grouped = (await page.locator('#otp-secret').textContent()).trim();
    assert.match(grouped, /^[A-Z2-7]{4}( [A-Z2-7]{1,4})*$/, `secret shown in groups of 4 (got ${grouped})`);
    const secret = base32Decode(grouped);
    assert.ok(secret.length >= 16, `secret has at least 128 bits (got ${secret.length * 8})`);
    return secret;
  }

  before(async () => {
    assert.ok(existsSync(MENSHEN_BIN), `menshen binary not found at ${MENSHEN_BIN} (build it or set MENSHEN_BIN)`);
    assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
    assert.ok(
      existsSync(path.join(OIDC_DIR, 'node_modules', 'oidc-provider')),
      `oidc-provider not installed in ${OIDC_DIR} (run npm ci there)`,
    );
    mkdirSync(OUTPUT_DIR, { recursive: true });
    // Screenshots of an earlier run (possibly of other step names) would be mistaken for this one's.
    for (const name of readdirSync(OUTPUT_DIR)) {
      if (name.endsWith('.png')) rmSync(path.join(OUTPUT_DIR, name), { force: true });
    }
    // The gateway's port comes first: the provider must know the redirect URI. The provider
    // picks its own port (--port 0) and says which in its READY line.
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    provider = startProvider(port);
    ({ issuer } = await provider.ready);
    assert.match(issuer, /^http:\/\/127\.0\.0\.1:\d+$/, 'the provider listens on loopback');
    demo = startDemo(port, issuer);
    creds = await demo.ready;
    assert.equal(new URL(creds.url).origin, base, 'demo prints the URL it listens on');
    assert.equal(creds.issuer, issuer, 'demo prints the issuer it was given');
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  }, { timeout: 120_000 });

  after(async () => {
    try {
      await browser?.close();
    } finally {
      await stopProcess(demo?.child);
      await stopProcess(provider?.child);
      process.off('exit', killOnExit);
      if (shots.length) console.log(`screenshots:\n  ${shots.join('\n  ')}`);
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

      response = await clickAndWait(page, bind);
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
