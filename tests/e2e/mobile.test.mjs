// Mobile citizen certificate (行動自然人憑證) binding and sign-in in a real browser (Debian's
// headless Chromium), through the real pages and their script, with the TW FidO stand-in
// (tests/src/bin/twfido_standin.rs) playing MOI's SP API on loopback and the test playing
// the phone (the stand-in's approve / decline controls).
//
// The stand-in writes `mobile-certificate.toml` ([certificate] + [mobile_certificate]);
// `menshen demo --mobile-certificate-config` takes it. Then, the way a person would:
//   1. demo.staff logs in with the password, is forced to bind, chooses 行動自然人憑證綁定,
//      types the ID, picks QR; the waiting page shows the QR code drawn by the server; the
//      phone approves; the page moves on by itself to the login page (綁定成功);
//   2. 行動自然人憑證APP登入 on the login page: ID, push; the phone approves; the legacy app
//      receives X-Menshen-Auth-Method: mobile-certificate;
//   3. the form refuses a mistyped ID, explains "no device" with the registration steps, and
//      a declined request comes back as the form with its sentence; at phone width too.
// Screenshots go to $MENSHEN_TEST_OUTPUT/e2e/mobile/.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  TWFIDO_STANDIN_BIN,
  freePort,
  identity,
  launchChromium,
  parseDemo,
  screenshots,
  startDemo,
  startProcess,
  stopProcess,
} from './helpers.mjs';

const HOLDER = 'A123456789';
const NO_DEVICE = 'C123456781';
const TARGET = '/students?id=7';
const shots = screenshots('mobile');

describe('mobile certificate binding and sign-in in headless Chromium', { timeout: 300_000 }, () => {
  let dir;
  let standin;
  let api;
  let demo;
  let creds;
  let base;
  let browser;

  before(async () => {
    shots.clear();
    dir = mkdtempSync(path.join(os.tmpdir(), 'menshen-e2e-mobile-'));
    standin = startProcess('twfido-standin', TWFIDO_STANDIN_BIN, ['--dir', dir], (out) => {
      const m = out.match(/twfido-standin listening on (http:\/\/127\.0\.0\.1:\d+)/);
      return m ? m[1] : undefined;
    });
    api = await standin.ready;
    const port = await freePort();
    demo = startDemo(port, {
      args: ['--mobile-certificate-config', path.join(dir, 'mobile-certificate.toml')],
      parse: parseDemo,
    });
    creds = await demo.ready;
    base = creds.url.replace(/\/$/, '');
    browser = await launchChromium();
  });

  after(async () => {
    shots.report();
    await browser?.close();
    await stopProcess(demo?.child);
    await stopProcess(standin?.child);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function control(pathname, body) {
    const r = await fetch(api + pathname, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200, `stand-in control ${pathname}: ${await r.text()}`);
  }

  /** The newest ticket the stand-in issued. */
  async function lastTicket() {
    const r = await fetch(api + '/_standin/state');
    const state = await r.json();
    const ticket = state.tickets.at(-1);
    assert.ok(ticket, 'the stand-in issued a ticket');
    return ticket;
  }

  async function newPage(width = 1100) {
    const context = await browser.newContext({ locale: 'zh-TW', viewport: { width, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    return { context, page };
  }

  async function noHorizontalScroll(page, what) {
    const wide = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(wide <= 0, `${what}: the page is ${wide} px wider than the screen`);
  }

  /** Fills the form and sends it; resolves once the next page has loaded. */
  async function send(page, id, mode) {
    await page.locator('#id-number').fill(id);
    await page.locator(mode === 'qr' ? '#mode-qr' : '#mode-push').check();
    await Promise.all([page.waitForNavigation(), page.locator('#mobile-submit').click()]);
  }

  it('binds by QR on the forced binding page, then signs in by push', async () => {
    const { context, page } = await newPage();
    await page.goto(base + TARGET);
    await page.locator('#username').fill(creds.staff.username);
    await page.locator('#password').fill(creds.staff.password);
    await Promise.all([page.waitForNavigation(), page.locator('#login-submit').click()]);
    assert.equal(new URL(page.url()).pathname, '/.menshen/bind', 'first login is forced to bind');
    const row = page.locator('#row-mobile');
    assert.match(await row.textContent(), /行動自然人憑證/);
    await shots.screenshot(page, '1-bind-choice');
    await Promise.all([page.waitForNavigation(), row.locator('#bind-mobile').click()]);
    assert.equal(new URL(page.url()).pathname, '/.menshen/bind/mobile');
    assert.equal((await page.locator('#mobile-title').textContent()).trim(), '行動自然人憑證綁定');
    await shots.screenshot(page, '2-bind-form');

    await send(page, HOLDER, 'qr');
    assert.equal(new URL(page.url()).pathname, '/.menshen/mobile/wait');
    const qr = page.locator('#mobile-qr');
    await qr.waitFor({ state: 'visible' });
    assert.match(await qr.getAttribute('src'), /^data:image\/svg\+xml/);
    assert.ok((await qr.evaluate((img) => img.naturalWidth)) > 0, 'the QR code renders');
    assert.match(await page.locator('#masked-id').textContent(), /\*+6789$/);
    // The countdown runs.
    const first = await page.locator('#countdown').textContent();
    await page.waitForFunction((t) => document.getElementById('countdown').textContent !== t, first);
    await shots.screenshot(page, '3-bind-wait-qr');

    const ticket = await lastTicket();
    assert.equal(ticket.id_num, HOLDER);
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/.menshen/login', { timeout: 20_000 }),
      control('/_standin/approve', { sp_ticket_id: ticket.sp_ticket_id }),
    ]);
    assert.match(await page.locator('#message').textContent(), /綁定/);
    await shots.screenshot(page, '4-bound-log-in-again');

    // 行動自然人憑證APP登入 from the login page, keeping the target.
    await page.goto(base + TARGET);
    const button = page.locator('.other-methods a', { hasText: '行動自然人憑證APP登入' });
    assert.equal(await button.count(), 1, 'the login page offers 行動自然人憑證APP登入');
    await shots.screenshot(page, '5-login-page');
    await Promise.all([page.waitForNavigation(), button.click()]);
    assert.equal(new URL(page.url()).pathname, '/.menshen/mobile');
    assert.ok(await page.locator('#mode-push').isChecked(), 'push is the default');
    await shots.screenshot(page, '6-login-form');
    await send(page, HOLDER, 'push');
    assert.equal(new URL(page.url()).pathname, '/.menshen/mobile/wait');
    assert.equal(await page.locator('#mobile-qr').count(), 0, 'no QR code for a push');
    await shots.screenshot(page, '7-login-wait-push');
    const push = await lastTicket();
    await Promise.all([
      page.waitForURL((u) => u.pathname === '/students', { timeout: 20_000 }),
      control('/_standin/approve', { sp_ticket_id: push.sp_ticket_id }),
    ]);
    assert.equal(new URL(page.url()).search, '?id=7');
    assert.equal((await identity(page, 'x-menshen-auth-method')).raw, 'mobile-certificate');
    assert.equal((await identity(page, 'x-menshen-user')).raw, creds.staff.username);
    await shots.screenshot(page, '8-app-signed-in');
    await context.close();
  });

  it('explains mistakes and refusals, at desktop and phone width', async () => {
    for (const width of [1100, 390]) {
      const { context, page } = await newPage(width);
      await page.goto(base + '/.menshen/mobile?rd=%2F');
      await send(page, 'A123456788', 'push');
      assert.match(await page.locator('#message').textContent(), /格式錯誤/);
      await shots.screenshot(page, `9-bad-id-${width}`);

      await send(page, NO_DEVICE, 'push');
      assert.match(await page.locator('#message').textContent(), /尚未在手機綁定/);
      assert.ok(await page.locator('#mode-qr').isChecked(), 'QR is offered instead');
      assert.ok(await page.locator('#mobile-steps').evaluate((d) => d.open), 'the registration steps are open');
      await noHorizontalScroll(page, `no-device page at ${width} px`);
      await shots.screenshot(page, `10-no-device-${width}`);

      // Declined on the phone: the waiting page comes back as the form with the sentence.
      await send(page, HOLDER, 'push');
      await noHorizontalScroll(page, `waiting page at ${width} px`);
      const ticket = await lastTicket();
      assert.equal(await page.locator('#mobile-form').count(), 0, 'the waiting page has no form');
      await control('/_standin/decline', { sp_ticket_id: ticket.sp_ticket_id });
      // The script sees the failure and reloads: the form comes back with the sentence.
      await page.locator('#mobile-form').waitFor({ state: 'visible', timeout: 20_000 });
      assert.match(await page.locator('#message').textContent(), /拒絕/);
      await shots.screenshot(page, `11-declined-${width}`);
      await context.close();
    }
  });
});
