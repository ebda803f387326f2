// Account recovery in headless Chromium, against `menshen demo --smtp-url` and a real SMTP
// server (tests/smtp/server.py: aiosmtpd from PyPI, installed by scripts/setup): a staff
// member binds OTP, forgets the password, follows 忘記密碼 from the login page, reads the
// mailed link from the SMTP server, sets a new password, signs in with it and the OTP code,
// then changes the password from 個人資料管理 (修改密碼). Every new page is also opened at
// phone width (390 px) and must not scroll sideways. Screenshots go to
// $MENSHEN_TEST_OUTPUT/e2e/recovery/.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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
  screenshots,
  startDemo,
  startProcess,
  stopProcess,
  submitLogin,
  totp,
} from './helpers.mjs';

const PHONE = { width: 390, height: 844 };
const NEW_PASSWORD = '一段很長的新密碼 correct horse 2026';
const NEWER_PASSWORD = 'another long passphrase for the registry';

/** Starts the test SMTP server on `port`, writing messages to `dir`. */
function startSmtp(port, dir) {
  const python = path.join(REPO, 'tests', 'smtp', '.venv', 'bin', 'python3');
  assert.ok(existsSync(python), `${python} is missing: run scripts/setup (it installs aiosmtpd)`);
  const script = path.join(REPO, 'tests', 'smtp', 'server.py');
  return startProcess('test SMTP server', python, [script, '--port', String(port), '--dir', dir], (out) =>
    out.includes('ready') ? true : undefined,
  );
}

/** The messages received so far to `address`, oldest first. */
function mailsTo(dir, address) {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')))
    .filter((m) => m.rcpt_tos.some((r) => r.toLowerCase() === address.toLowerCase()));
}

/**
 * Waits until `address` has `n` messages with `subject` (the gateway sends in the background;
 * notices such as 您的帳號已綁定新的登入方式 arrive too).
 */
async function waitForMails(dir, address, n, subject) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const mails = mailsTo(dir, address).filter((m) => m.subject === subject);
    if (mails.length >= n) return mails;
    assert.ok(Date.now() < deadline, `${n} mails to ${address} (got ${mails.length})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function assertFitsPhone(page, what) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `${what} fits 390 px without sideways scrolling (overflow ${overflow} px)`);
}

describe('forgot password by mail and change password, in headless Chromium', { timeout: 300_000 }, () => {
  let smtp;
  let mailDir;
  let demo;
  let creds;
  let base;
  let browser;
  let context;
  let page;
  let secret;
  let address;
  const shots = screenshots('recovery');
  const { screenshot } = shots;
  const { where, readBindOtpPage } = gatewayPages(() => base);

  before(async () => {
    shots.clear();
    mailDir = mkdtempSync(path.join(os.tmpdir(), 'menshen-mail-'));
    const smtpPort = await freePort();
    smtp = startSmtp(smtpPort, mailDir);
    await smtp.ready;
    const port = await freePort();
    demo = startDemo(port, { args: ['--smtp-url', `smtp://127.0.0.1:${smtpPort}?tls=none`] });
    creds = await demo.ready;
    base = `http://127.0.0.1:${port}`;
    address = `${creds.staff.username}@demo.invalid`;
    browser = await launchChromium();
    ({ context, page } = await newPageIn(browser));
  }, { timeout: 120_000 });

  after(async () => {
    try {
      await context?.close();
      await browser?.close();
    } finally {
      await stopProcess(demo?.child);
      await stopProcess(smtp?.child);
      if (mailDir) rmSync(mailDir, { recursive: true, force: true });
      shots.report();
    }
  });

  it('binds OTP on the first sign-in (the reset must keep it)', async () => {
    await page.goto(base + LOGIN_PATH);
    await submitLogin(page, creds.staff.username, creds.staff.password);
    assert.equal(where(page).pathname, BIND_PATH);
    await clickAndWait(page, page.locator('#bind-otp'));
    secret = await readBindOtpPage(page, creds.staff);
    await page.locator('#code').fill(totp(secret, Date.now() / 1000));
    await clickAndWait(page, page.locator('#bind-submit'));
    assert.equal(where(page).pathname, LOGIN_PATH);
  });

  it('leads from 忘記密碼? on the login page to the forgot form, which mails a link', async () => {
    await page.goto(base + LOGIN_PATH);
    assert.equal(await page.locator('#forgot-password').getAttribute('href'), '/.menshen/password/forgot');
    await clickAndWait(page, page.locator('#forgot-password'));
    assert.equal(where(page).pathname, '/.menshen/password/forgot');
    await screenshot(page, '01-forgot-form');
    await page.locator('#login').fill(creds.staff.username);
    const response = await clickAndWait(page, page.locator('#forgot-submit'));
    assert.equal(response.status(), 200);
    const message = (await page.locator('#message').textContent()).trim();
    assert.ok(message.includes('重設密碼的連結已寄出'), `the one answer (got ${message})`);
    assert.equal(await page.locator('#forgot-form').count(), 0, 'no form after the request');
    await screenshot(page, '02-forgot-sent');
  });

  it('sets a new password through the mailed link', async () => {
    const [mail] = await waitForMails(mailDir, address, 1, '門神 Menshen 重設密碼連結');
    assert.equal(mail.subject, '門神 Menshen 重設密碼連結');
    assert.deepEqual(mail.defects, []);
    const link = mail.text.split(/\s+/).find((w) => w.includes('/.menshen/password/reset?token='));
    assert.ok(link, `a link in the text part: ${mail.text}`);
    assert.ok(link.startsWith(base), `the link goes to the gateway (${link})`);
    await page.goto(link);
    assert.equal(where(page).pathname, '/.menshen/password/reset');
    await screenshot(page, '03-reset-form');
    await page.locator('#password').fill(NEW_PASSWORD);
    await page.locator('#password-confirm').fill(NEW_PASSWORD);
    await clickAndWait(page, page.locator('#password-submit'));
    assert.equal(where(page).pathname, LOGIN_PATH);
    const message = (await page.locator('#message').textContent()).trim();
    assert.ok(message.includes('密碼已重設'), `reset message (got ${message})`);
    await screenshot(page, '04-login-after-reset');
    // The link works once.
    const again = await page.goto(link);
    assert.equal(again.status(), 410);
    assert.equal((await page.locator('#notice-title').textContent()).trim(), '連結已失效');
    await screenshot(page, '05-link-used');
  });

  it('signs in with the new password and still asks for the OTP code', async () => {
    await page.goto(`${base}/students`);
    const response = await submitLogin(page, creds.staff.username, NEW_PASSWORD);
    assert.equal(response.status(), 200);
    assert.equal(where(page).pathname, OTP_PATH, 'the second factor survives the reset');
    // The binding spent the current step; the gateway accepts the next one.
    await page.locator('#code').fill(totp(secret, Date.now() / 1000 + TOTP_STEP_SECONDS));
    await clickAndWait(page, page.locator('#otp-submit'));
    assert.equal(where(page).pathname, '/students');
    assert.equal((await identity(page, 'x-menshen-user')).raw, creds.staff.username);
  });

  it('changes the password from 個人資料管理', async () => {
    // The legacy app's page links to the profile.
    assert.equal(await page.locator('#menshen-profile').getAttribute('href'), '/.menshen/account');
    await clickAndWait(page, page.locator('#menshen-profile'));
    assert.equal(where(page).pathname, '/.menshen/account');
    await clickAndWait(page, page.locator('#change-password'));
    assert.equal(where(page).pathname, '/.menshen/password/change');
    await screenshot(page, '06-change-form');
    await page.locator('#current-password').fill('not my password');
    await page.locator('#password').fill(NEWER_PASSWORD);
    await page.locator('#password-confirm').fill(NEWER_PASSWORD);
    const wrong = await clickAndWait(page, page.locator('#password-submit'));
    assert.equal(wrong.status(), 401);
    assert.ok((await page.locator('#message').textContent()).includes('目前的密碼錯誤'));
    await page.locator('#current-password').fill(NEW_PASSWORD);
    await page.locator('#password').fill(NEWER_PASSWORD);
    await page.locator('#password-confirm').fill(NEWER_PASSWORD);
    await clickAndWait(page, page.locator('#password-submit'));
    assert.equal(where(page).pathname, '/.menshen/account');
    assert.ok((await page.locator('#message').textContent()).includes('密碼已修改'));
    await screenshot(page, '07-account-after-change');
    // Two notices: after the reset and after the change.
    const changed = await waitForMails(mailDir, address, 2, '您的密碼已變更');
    assert.equal(changed.length, 2);
    assert.deepEqual(
      mailsTo(mailDir, address).map((m) => m.subject),
      ['您的帳號已綁定新的登入方式', '門神 Menshen 重設密碼連結', '您的密碼已變更', '您的密碼已變更'],
    );
  });

  it('fits every new page on a phone', async () => {
    await page.setViewportSize(PHONE);
    for (const [step, target] of [
      ['08-phone-change-form', '/.menshen/password/change'],
      ['09-phone-help', '/.menshen/help'],
      ['10-phone-link-invalid', '/.menshen/password/reset?token=x'],
      ['11-phone-account', '/.menshen/account'],
      ['11b-phone-activity', '/.menshen/account?tab=activity'],
      ['11c-phone-settings', '/.menshen/account?tab=settings'],
      ['11d-phone-bind', '/.menshen/bind'],
    ]) {
      await page.goto(base + target);
      await assertFitsPhone(page, target);
      await screenshot(page, step);
    }
    // Stacked rows: every activity cell carries its column's label, shown before the value.
    await page.goto(`${base}/.menshen/account?tab=activity`);
    const label = await page
      .locator('#activity-table td.activity-when')
      .first()
      .evaluate((td) => getComputedStyle(td, '::before').content);
    assert.ok(label.includes('時間'), `the time cell is labelled on a phone (got ${label})`);
    const { context: anonymous, page: phone } = await newPageIn(browser);
    try {
      await phone.setViewportSize(PHONE);
      for (const [step, target] of [
        ['12-phone-login', LOGIN_PATH],
        ['13-phone-forgot', '/.menshen/password/forgot'],
      ]) {
        await phone.goto(base + target);
        await assertFitsPhone(phone, target);
        await screenshot(phone, step);
      }
    } finally {
      await anonymous.close();
    }
  });
});
