// Citizen digital certificate (自然人憑證) binding and sign-in in a real browser (Debian's headless
// Chromium), through the real pages and the real page script, with the HiPKI stand-in
// (tests/src/bin/hipki_standin.rs) playing the component on loopback with a software card.
//
// The stand-in writes a MOICA-shaped test PKI and a [certificate] table pointing at it and at
// itself; `menshen demo --certificate-config` takes that table. Then, the way a person would:
//   1. demo.staff logs in with the password, is forced to bind, chooses 自然人憑證綁定, passes
//      the check table, enters the PIN; the component popup signs; 自然人憑證綁定成功;
//   2. 自然人憑證登入 from the login page: PIN, and the legacy app sees the certificate method;
//   3. the check table and the messages for a missing card, a missing reader, an old
//      component, wrong PINs down to a locked card, a cancelled signature, and cards the
//      server refuses (not bound, revoked, expired, another CA), and no component at all;
//   4. an AA account is refused the certificate binding page.
// Screenshots go to $MENSHEN_TEST_OUTPUT/e2e/certificate/.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  MENSHEN_BIN,
  STANDIN_BIN,
  freePort,
  launchChromium,
  outputDir,
  parseDemo,
  startProcess,
  stopProcess,
} from './helpers.mjs';

const PIN = '123456';
const TARGET = '/students?id=7';

describe('citizen certificate binding and sign-in in headless Chromium', { timeout: 300_000 }, () => {
  let dir;
  let standin;
  let component;
  let demo;
  let creds;
  let base;
  let browser;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'menshen-e2e-card-'));
    standin = startProcess('hipki-standin', STANDIN_BIN, ['--dir', dir, '--pin', PIN], (out) => {
      const m = out.match(/hipki-standin listening on (http:\/\/127\.0\.0\.1:\d+)/);
      return m ? m[1] : undefined;
    });
    component = await standin.ready;
    const port = await freePort();
    demo = startProcess(
      'menshen demo',
      MENSHEN_BIN,
      ['demo', '--listen', `127.0.0.1:${port}`, '--certificate-config', path.join(dir, 'certificate.toml')],
      parseDemo,
    );
    creds = await demo.ready;
    base = creds.url.replace(/\/$/, '');
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await stopProcess(demo?.child);
    await stopProcess(standin?.child);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** Tells the stand-in which card is in the reader (or none, or no reader). */
  async function insert(card) {
    await control('/_standin/card', { card });
  }

  async function control(pathname, body) {
    const r = await fetch(component + pathname, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 200, `stand-in control ${pathname} ${JSON.stringify(body)}: ${await r.text()}`);
  }

  async function standinState() {
    const r = await fetch(component + '/_standin/state');
    assert.equal(r.status, 200);
    return r.json();
  }

  async function screenshot(page, name) {
    await page.screenshot({ path: path.join(outputDir('certificate'), `${name}.png`), fullPage: true });
  }

  async function newPage() {
    const context = await browser.newContext({ locale: 'zh-TW', viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    page.setDefaultTimeout(20_000);
    return { context, page };
  }

  /** Waits until the check table has run, and returns each row's state and result text. */
  async function checks(page) {
    await page.waitForSelector('#certificate-form[data-checked="yes"]');
    const row = async (id) => ({
      state: await page.locator(`#${id}`).getAttribute('data-state'),
      text: (await page.locator(`#${id} .check-result`).textContent()).trim(),
    });
    return {
      os: await row('check-os'),
      browser: await row('check-browser'),
      component: await row('check-component'),
      card: await row('check-card'),
      pinEnabled: await page.locator('#pin').isEnabled(),
    };
  }

  async function recheck(page) {
    await page.locator('#recheck').click();
    return checks(page);
  }

  /** Enters `pin`, presses 登入, and waits for the message the page shows. */
  async function signExpectingMessage(page, pin) {
    await page.locator('#pin').fill(pin);
    await page.locator('#certificate-submit').click();
    await page.waitForFunction(() => {
      const m = document.getElementById('message');
      return m && m.checkVisibility() && m.classList.contains('message-error');
    });
    return (await page.locator('#message').textContent()).trim();
  }

  async function passwordLogin(page, account, target) {
    await page.goto(base + target);
    assert.equal(new URL(page.url()).pathname, '/.menshen/login');
    await page.locator('#username').fill(account.username);
    await page.locator('#password').fill(account.password);
    await Promise.all([page.waitForNavigation(), page.locator('#login-submit').click()]);
  }

  it('binds a staff card through the pages and signs in with it alone', async () => {
    const { context, page } = await newPage();
    await insert('default');
    await passwordLogin(page, creds.staff, TARGET);
    assert.equal(new URL(page.url()).pathname, '/.menshen/bind', 'first login is forced to bind');
    const row = page.locator('#row-certificate');
    assert.match(await row.textContent(), /自然人憑證/);
    await Promise.all([page.waitForNavigation(), row.locator('#bind-certificate').click()]);
    assert.equal(new URL(page.url()).pathname, '/.menshen/bind/certificate');
    assert.equal((await page.locator('#certificate-title').textContent()).trim(), '自然人憑證綁定');

    const c = await checks(page);
    assert.ok(!(await page.locator('#certificate-done').isVisible()), 'no success box before signing');
    assert.ok(!(await page.locator('#message').isVisible()), 'no message before signing');
    assert.equal(c.os.state, 'ok', `OS row: ${c.os.text}`);
    assert.equal(c.browser.state, 'ok', `browser row: ${c.browser.text}`);
    assert.match(c.browser.text, /Chrome \d+/);
    assert.equal(c.component.state, 'ok', `component row: ${c.component.text}`);
    assert.equal(c.component.text, '版本：1.3.4.103339');
    assert.equal(
      await page.locator('#certificate-form').getAttribute('data-source'),
      'image',
      'the check table read the component through /p11Image.bmp',
    );
    assert.equal(c.card.state, 'ok', `card row: ${c.card.text}`);
    assert.match(c.card.text, /^Generic Smart Card Reader Interface 0 卡號:\[TP03\d+\]$/);
    assert.ok(c.pinEnabled, 'PIN field opens once the checks pass');
    await screenshot(page, '1-bind-checks');

    await page.locator('#pin').fill(PIN);
    const [popup] = await Promise.all([context.waitForEvent('page'), page.locator('#certificate-submit').click()]);
    assert.equal(new URL(popup.url()).origin, component, 'the popup is the component’s popupForm');
    await page.locator('#certificate-done').waitFor({ state: 'visible' });
    assert.ok(!(await page.locator('#certificate-form').isVisible()), 'the form is gone once bound');
    assert.match(await page.locator('#certificate-done').textContent(), /自然人憑證綁定成功/);
    assert.equal(await page.locator('#pin').inputValue(), '', 'the PIN is not left in the page');
    await screenshot(page, '2-bind-success');

    // What the page handed the component: the manual's tbsPackage, the PIN included.
    const state = await standinState();
    const sent = state.last_tbs_package;
    assert.equal(sent.func, 'MakeSignature');
    assert.equal(sent.signatureType, 'PKCS7');
    assert.equal(sent.hashAlgorithm, 'SHA256');
    assert.equal(sent.tbsEncoding, 'base64');
    assert.equal(sent.pin, '***', 'a PIN was sent (the stand-in masks it)');
    assert.match(Buffer.from(sent.tbs, 'base64').toString('utf8'), /^menshen-bind:/);

    await Promise.all([page.waitForNavigation(), page.locator('#certificate-done-ok').click()]);
    assert.equal(new URL(page.url()).pathname, '/.menshen/login');
    assert.match(await page.locator('#message').textContent(), /綁定/);

    // Sign in with the card alone: 自然人憑證登入 on the login page.
    await page.goto(base + TARGET);
    const button = page.locator('.other-methods a', { hasText: '自然人憑證登入' });
    assert.equal(await button.count(), 1, 'the login page offers 自然人憑證登入');
    await Promise.all([page.waitForNavigation(), button.click()]);
    assert.equal(new URL(page.url()).pathname, '/.menshen/certificate');
    assert.equal((await page.locator('#certificate-title').textContent()).trim(), '自然人憑證登入');
    assert.ok((await checks(page)).pinEnabled);
    await page.locator('#pin').fill(PIN);
    await screenshot(page, '3-login');
    await Promise.all([page.waitForURL((url) => url.pathname === '/students'), page.locator('#certificate-submit').click()]);
    const url = new URL(page.url());
    assert.equal(url.pathname + url.search, TARGET, 'back to where the user was going');
    const method = page.locator('#identity tr[data-header="x-menshen-auth-method"] td.value');
    assert.equal((await method.textContent()).trim(), 'certificate');
    const user = page.locator('#identity tr[data-header="x-menshen-user"] td.value');
    assert.equal((await user.textContent()).trim(), creds.staff.username);
    await screenshot(page, '4-app');
    assert.match(Buffer.from((await standinState()).last_tbs_package.tbs, 'base64').toString('utf8'), /^menshen-login:/);

    // Re-binding (a renewed card) from this signed-in session asks for the current password
    // in the same page; the session alone gets no challenge.
    await page.goto(`${base}/.menshen/bind/certificate`);
    assert.equal((await page.locator('label[for="current-proof"]').textContent()).trim(), '目前的密碼');
    assert.ok((await checks(page)).pinEnabled);
    await page.locator('#current-proof').fill('not-the-password');
    await page.locator('#pin').fill(PIN);
    await page.locator('#certificate-submit').click();
    await page.waitForFunction(() => /目前的密碼（或驗證APP的密碼）錯誤/.test(document.querySelector('#message').textContent));
    assert.ok(!(await page.locator('#certificate-done').isVisible()), 'nothing bound with a wrong password');
    await screenshot(page, '5-rebind-wrong-password');
    await page.locator('#current-proof').fill(creds.staff.password);
    await page.locator('#pin').fill(PIN);
    await page.locator('#certificate-submit').click();
    await page.locator('#certificate-done').waitFor({ state: 'visible' });
    assert.match(Buffer.from((await standinState()).last_tbs_package.tbs, 'base64').toString('utf8'), /^menshen-bind:/);
    await screenshot(page, '6-rebind-done');
    await context.close();
  });

  it('explains every reader, card, PIN and certificate problem in plain words', async () => {
    const { context, page } = await newPage();
    await insert('default');
    await page.goto(`${base}/.menshen/certificate?rd=${encodeURIComponent(TARGET)}`);
    assert.ok((await checks(page)).pinEnabled);

    await insert('none');
    let c = await recheck(page);
    assert.equal(c.card.state, 'failed');
    assert.match(c.card.text, /未插入卡片/);
    assert.ok(!c.pinEnabled, 'no PIN without a card');
    assert.match((await page.locator('#pin-hint').textContent()).trim(), /請先通過以上項目檢測/);
    await screenshot(page, '5-no-card');

    await insert('no_reader');
    c = await recheck(page);
    assert.equal(c.card.state, 'failed');
    assert.match(c.card.text, /未偵測到讀卡機/);

    await insert('default');
    await control('/_standin/config', { version: '1.2.9.1' });
    c = await recheck(page);
    assert.equal(c.component.state, 'failed');
    assert.match(c.component.text, /版本過舊/);
    await control('/_standin/config', { version: '1.3.4.103339' });
    c = await recheck(page);
    assert.ok(c.pinEnabled);

    // Wrong PINs: the tries left, then a locked card, even with the right PIN.
    assert.match(await signExpectingMessage(page, '000000'), /尚可再試 2 次/);
    assert.match(await signExpectingMessage(page, '000001'), /僅剩 1 次機會/);
    assert.match(await signExpectingMessage(page, '000002'), /已鎖卡/);
    assert.match(await signExpectingMessage(page, PIN), /已鎖卡/);
    await screenshot(page, '6-locked');
    await insert('default'); // a fresh card for the rest

    await control('/_standin/fail', { ret_code: 0x76000999, last_error: 0 });
    assert.match(await signExpectingMessage(page, PIN), /已取消簽章/);

    // Cards the component signs with but Menshen refuses.
    const refusals = [
      ['stranger', /尚未綁定帳號/],
      ['revoked', /已廢止/],
      ['expired', /已過期/],
      ['untrusted', /不是由內政部憑證管理中心簽發/],
    ];
    for (const [card, expected] of refusals) {
      await insert(card);
      assert.ok((await recheck(page)).pinEnabled, `${card}: checks pass`);
      assert.match(await signExpectingMessage(page, PIN), expected, `${card} card`);
    }
    await screenshot(page, '7-refused');
    assert.equal(new URL(page.url()).pathname, '/.menshen/certificate', 'no refusal signs anyone in');
    const cookies = await context.cookies(base);
    assert.ok(!cookies.some((k) => k.name === 'menshen'), 'no session cookie after refusals');
    await context.close();
  });

  it('refuses the certificate binding to an AA account', async () => {
    const { context, page } = await newPage();
    await passwordLogin(page, creds.aa, '/admin/');
    assert.equal(new URL(page.url()).pathname, '/.menshen/bind');
    assert.match(await page.locator('#row-certificate').textContent(), /學校管理者\(AA帳號\)僅提供 OTP 驗證綁定/);
    assert.equal(await page.locator('#bind-certificate').count(), 0, 'no certificate button for AA');
    const response = await page.goto(base + '/.menshen/bind/certificate');
    assert.equal(response.status(), 403);
    assert.match(await page.locator('body').textContent(), /AA/);
    await context.close();
  });

  it('says so when the component is not running', async () => {
    const { context, page } = await newPage();
    await stopProcess(standin.child);
    await page.goto(`${base}/.menshen/certificate`);
    const c = await checks(page);
    assert.equal(c.component.state, 'failed');
    assert.equal(c.component.text, '未安裝客戶端程式或未啟動服務');
    assert.ok(!c.pinEnabled);
    const download = page.locator('#download-component');
    assert.equal(await download.getAttribute('href'), 'https://moica.nat.gov.tw/download_1.html');
    await screenshot(page, '8-no-component');
    await context.close();
  });
});
