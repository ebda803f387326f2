// Shared pieces of the headless-Chromium tests: where things are, free ports, starting and
// stopping the processes under test (the demo among them), the browser and its pages, the
// gateway's paths and the page steps more than one test takes, TOTP codes, and screenshots.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
const TARGET_DIR = process.env.CARGO_TARGET_DIR || path.join(REPO, 'target');
export const MENSHEN_BIN = process.env.MENSHEN_BIN || path.join(TARGET_DIR, 'debug', 'menshen');
export const STANDIN_BIN = process.env.HIPKI_STANDIN_BIN || path.join(TARGET_DIR, 'debug', 'hipki-standin');
export const TWFIDO_STANDIN_BIN =
  process.env.TWFIDO_STANDIN_BIN || path.join(TARGET_DIR, 'debug', 'twfido-standin');
export const OUTPUT_DIR = path.join(process.env.MENSHEN_TEST_OUTPUT || path.join(REPO, 'test-output'), 'e2e');
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
export const STARTUP_TIMEOUT_MS = 60_000;

// The gateway's own pages and its session cookie.
export const LOGIN_PATH = '/.menshen/login';
export const BIND_PATH = '/.menshen/bind';
export const BIND_OTP_PATH = '/.menshen/bind/otp';
export const OTP_PATH = '/.menshen/otp';
export const SESSION_COOKIE = 'menshen';

export const TOTP_STEP_SECONDS = 30;

/** Decodes RFC 4648 base32 (no padding needed; spaces and case ignored). */
export function base32Decode(text) {
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
export function stepOf(unixSeconds) {
  return Math.floor(unixSeconds / TOTP_STEP_SECONDS);
}

/**
 * RFC 6238 TOTP (HMAC-SHA1, 30 s steps, 6 digits) of `secret` at time step `step`: HMAC over
 * the 8-byte big-endian step counter, then RFC 4226 dynamic truncation.
 */
export function totpAtStep(secret, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 1_000_000).padStart(6, '0');
}

/** The TOTP code of `secret` at `unixSeconds` (see totpAtStep). */
export function totp(secret, unixSeconds) {
  return totpAtStep(secret, stepOf(unixSeconds));
}

// RFC 6238 appendix B test vector (SHA-1, T = 59 s): the helpers above must get it right, or
// every failure in the tests would be about the test and not the gateway. Checked on import,
// so a wrong helper fails every file that imports this one.
assert.equal(totp(Buffer.from('12345678901234567890'), 59), '287082');

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort() {
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
 * Spawns `command` and resolves with `parse(stdout)` once that returns a value. Rejects, with
 * everything the process printed, if that takes longer than STARTUP_TIMEOUT_MS or the process
 * exits first. The child is killed when the test process exits, whatever happens.
 * `options` go to spawn (`cwd`, say); its `env` is added to this process's environment and
 * NO_COLOR=1, not put in their place.
 */
export function startProcess(label, command, args, parse, options = {}) {
  const { env, ...spawnOptions } = options;
  const child = spawn(command, args, {
    ...spawnOptions,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NO_COLOR: '1', ...env },
  });
  process.on('exit', () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const ready = new Promise((resolve, reject) => {
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(
        new Error(
          `${label} did not start: ${why}\ncommand: ${command} ${args.join(' ')}\n` +
            `--- stdout ---\n${stdout}\n--- stderr ---\n${stderr.slice(-4000)}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`not ready within ${STARTUP_TIMEOUT_MS / 1000} s`), STARTUP_TIMEOUT_MS);
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const value = settled ? undefined : parse(stdout);
      if (value !== undefined && value !== null) {
        settled = true;
        clearTimeout(timer);
        resolve(value);
      }
    });
    child.on('error', (err) => fail(`spawn failed: ${err.message}`));
    child.on('exit', (code, signal) => fail(`process exited early (code ${code}, signal ${signal})`));
  });
  return { child, ready, output: () => ({ stdout, stderr }) };
}

/** Stops a child: SIGTERM, then SIGKILL if it has not exited after 5 s. */
export async function stopProcess(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

/** The demo's printed URL and accounts, once all are on stdout. */
export function parseDemo(stdout) {
  const open = stdout.match(/^\s*Open:\s+(\S+)/m);
  const staff = stdout.match(/^\s*Staff:\s+(\S+)\s+\/\s+(\S+)\s*$/m);
  const aa = stdout.match(/^\s*AA:\s+(\S+)\s+\/\s+(\S+)\s*$/m);
  if (!(open && staff && aa)) return undefined;
  return {
    url: open[1],
    staff: { username: staff[1], password: staff[2] },
    aa: { username: aa[1], password: aa[2] },
  };
}

/**
 * Starts `menshen demo` on 127.0.0.1:`port`, with `args` after `--listen` and `env` added to
 * the environment; `ready` resolves with `parse(stdout)`, by default parseDemo's URL and accounts.
 * The demo runs single-host (one app, its own sign-in pages) unless `sso` is set: then the
 * portal is login.localhost and the apps registry.localhost and hr.localhost.
 */
export function startDemo(port, { args = [], env = {}, parse = parseDemo, sso = false } = {}) {
  assert.ok(existsSync(MENSHEN_BIN), `menshen binary not found at ${MENSHEN_BIN} (build it or set MENSHEN_BIN)`);
  const mode = sso ? [] : ['--single-host'];
  return startProcess('menshen demo', MENSHEN_BIN, ['demo', '--listen', `127.0.0.1:${port}`, ...mode, ...args], parse, { env });
}

/**
 * The directory for one test file's screenshots, `$MENSHEN_TEST_OUTPUT/e2e/<name>/`, created:
 * each file has its own, because the files run at the same time.
 */
export function outputDir(name) {
  const dir = path.join(OUTPUT_DIR, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Screenshots of one test file, in outputDir(`name`). `clear()` creates the directory and
 * removes the *.png files of an earlier run (possibly of other step names, which would be
 * mistaken for this run's): only this file's, because the files run at the same time.
 * `screenshot(page, step)` saves a full-page `<step>.png`; `report()` lists the files saved.
 */
export function screenshots(name) {
  const files = [];
  let dir;
  return {
    files,
    clear() {
      dir = outputDir(name);
      for (const file of readdirSync(dir)) {
        if (file.endsWith('.png')) rmSync(path.join(dir, file), { force: true });
      }
    },
    async screenshot(page, step) {
      const file = path.join(dir ?? outputDir(name), `${step}.png`);
      await page.screenshot({ path: file, fullPage: true });
      files.push(file);
      return file;
    },
    report() {
      if (files.length) console.log(`screenshots:\n  ${files.join('\n  ')}`);
    },
  };
}

/** Debian's Chromium, headless, never a downloaded browser. */
export async function launchChromium() {
  assert.ok(existsSync(CHROMIUM), `Chromium not found at ${CHROMIUM} (apt-get install chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

/** A fresh browser context (zh-TW, 1100×800) and a page in it, 15 s default timeout. */
export async function newPage(browser) {
  const context = await browser.newContext({
    locale: 'zh-TW',
    viewport: { width: 1100, height: 800 },
  });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  return { context, page };
}

/** Clicks `locator` and waits for the page it leads to. */
export async function clickAndWait(page, locator) {
  const [response] = await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), locator.click()]);
  return response;
}

/** Fills and submits the login form on the current page, waiting for the response page. */
export async function submitLogin(page, username, password) {
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  return clickAndWait(page, page.locator('#login-submit'));
}

/** Value cells of the demo app's identity table for one header. */
export async function identity(page, header) {
  const row = page.locator(`#identity tr[data-header="${header}"]`);
  assert.equal(await row.count(), 1, `identity table has exactly one row for ${header}`);
  return {
    raw: (await row.locator('td.value').textContent()).trim(),
    decoded: (await row.locator('td.decoded').textContent()).trim(),
  };
}

/**
 * Page steps that need the gateway's origin (`http://127.0.0.1:PORT`). `origin` is a function
 * that returns it, called each time a step runs: the port is known only once a test's `before`
 * hook has started the demo.
 */
export function gatewayPages(origin) {
  /** Path and query of the page's current URL, after checking it is still on the demo. */
  function where(page) {
    const url = new URL(page.url());
    assert.equal(url.origin, origin(), `still on the demo origin (at ${page.url()})`);
    return url;
  }

  async function sessionCookieOf(context) {
    return (await context.cookies(origin())).find((c) => c.name === SESSION_COOKIE);
  }

  /** Opens `target` anonymously, checks it lands on the login page with rd, and logs in. */
  async function loginVia(page, target, account) {
    await page.goto(origin() + target);
    const url = where(page);
    assert.equal(url.pathname, LOGIN_PATH, `${target} redirects to the login page`);
    assert.equal(url.searchParams.get('rd'), target, 'rd carries the original path and query');
    return submitLogin(page, account.username, account.password);
  }

  /**
   * On the OTP binding page: checks the QR code and the manual key, and returns the secret
   * (bytes) read from #otp-secret.
   */
  async function readBindOtpPage(page, account) {
    assert.equal(where(page).pathname, BIND_OTP_PATH);
    const qr = page.locator('#otp-qr');
    await qr.waitFor({ state: 'visible' });
    const src = await qr.getAttribute('src');
    const prefix = 'data:image/svg+xml;base64,';
    assert.ok(src.startsWith(prefix), `QR image is an SVG data URI (got ${src.slice(0, 40)}…)`);
    const svg = Buffer.from(src.slice(prefix.length), 'base64').toString('utf8');
    assert.match(svg, /<svg[\s>]/, 'the data URI decodes to an SVG document');
    assert.ok(
      await qr.evaluate((img) => img.complete && img.naturalWidth > 0),
      'the browser rendered the QR image',
    );
    assert.equal((await page.locator('#otp-account').textContent()).trim(), account.username);
    const grouped = (await page.locator('#otp-secret').textContent()).trim();
    assert.match(grouped, /^[A-Z2-7]{4}( [A-Z2-7]{1,4})*$/, `secret shown in groups of 4 (got ${grouped})`);
    const secret = base32Decode(grouped);
    assert.ok(secret.length >= 16, `secret has at least 128 bits (got ${secret.length * 8})`);
    assert.match(await page.locator('#bind-otp-form input[name="bind_id"]').inputValue(), /\S/, 'bind_id is set');
    assert.match(await page.locator('#bind-otp-form input[name="csrf"]').inputValue(), /\S/, 'csrf is set');
    return secret;
  }

  return { where, sessionCookieOf, loginVia, readBindOtpPage };
}
