// Self-test of the loopback OpenID Connect provider: `node --test selftest.mjs`.
//
// Drives provider.mjs exactly as a browser-less test client (e.g. Menshen's
// Rust tests) must: manual redirects, a small path-aware cookie jar, plain
// form POSTs, token exchange, and ID-token verification with node:crypto.

import { spawn } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { once } from 'node:events';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';

const HERE = path.dirname(new URL(import.meta.url).pathname);
const CLIENT_ID = 'menshen-test';
const CLIENT_SECRET = 'menshen-test-secret';
const REDIRECT_URI = 'http://127.0.0.1:18080/auth/oidc/callback';
const REDIRECT_URI_2 = 'http://localhost:18080/cb';

// ------------------------------------------------------------------ helpers

const running = new Set();

async function startProvider(extra = [], { port = 0 } = {}) {
  const proc = spawn(process.execPath, [
    path.join(HERE, 'provider.mjs'),
    '--port', String(port),
    '--client-id', CLIENT_ID,
    '--client-secret', CLIENT_SECRET,
    '--redirect-uri', REDIRECT_URI,
    '--redirect-uri', REDIRECT_URI_2,
    ...extra,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let stderr = '';
  let out = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  proc.stdout.on('data', (d) => { out += d; });
  const issuer = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`provider did not become READY; stderr: ${stderr}`)), 15000);
    proc.stdout.on('data', () => {
      const m = /^READY (\S+)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`provider exited early (${code}); stderr: ${stderr}`));
    });
  });
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    const exited = once(proc, 'exit');
    proc.kill('SIGTERM');
    const [code] = await exited;
    running.delete(proc);
    return code;
  };
  return {
    issuer, proc, stop, stderr: () => stderr, stdout: () => out,
  };
}

after(async () => {
  for (const p of running) if (p.exitCode === null) p.kill('SIGTERM');
});

// Minimal RFC 6265-ish jar: host-only, path-prefix match, expiry via
// Expires/Max-Age (the provider deletes cookies with an epoch Expires).
class CookieJar {
  constructor() { this.cookies = []; }

  store(url, response) {
    const u = new URL(url);
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';').map((s) => s.trim());
      const i = pair.indexOf('=');
      const name = pair.slice(0, i);
      const value = pair.slice(i + 1);
      let cpath = '/';
      let expires = Infinity;
      for (const a of attrs) {
        const [k, v = ''] = a.split('=');
        const key = k.toLowerCase();
        if (key === 'path') cpath = v;
        if (key === 'expires') expires = Date.parse(v);
        if (key === 'max-age') expires = Date.now() + Number(v) * 1000;
      }
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.path === cpath && c.host === u.host));
      if (expires > Date.now() && value !== '') this.cookies.push({ name, value, path: cpath, host: u.host, expires });
    }
  }

  header(url) {
    const u = new URL(url);
    const now = Date.now();
    return this.cookies
      .filter((c) => c.host === u.host && c.expires > now
        && (u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  names() { return this.cookies.map((c) => c.name).sort(); }
}

async function req(jar, url, { method = 'GET', form, headers = {} } = {}) {
  const h = { ...headers };
  const cookie = jar.header(url);
  if (cookie) h.cookie = cookie;
  let body;
  if (form) {
    body = new URLSearchParams(form).toString();
    h['content-type'] = 'application/x-www-form-urlencoded';
  }
  const res = await fetch(url, { method, headers: h, body, redirect: 'manual' });
  jar.store(url, res);
  const text = await res.text();
  const location = res.headers.get('location');
  return { status: res.status, text, location: location && new URL(location, url).href, headers: res.headers };
}

// Follow 3xx (always as GET) until the provider redirects to the client's
// redirect_uri; returns that URL, or the final non-redirect response.
async function follow(jar, start, redirectUri) {
  let r = start;
  const seen = [];
  for (let i = 0; i < 10 && r.status >= 300 && r.status < 400; i++) {
    if (r.location.startsWith(redirectUri)) return { callback: new URL(r.location), seen };
    seen.push(r.location);
    r = await req(jar, r.location);
  }
  return { response: r, seen };
}

const b64u = (b) => Buffer.from(b).toString('base64url');

function pkce() {
  const verifier = b64u(crypto.randomBytes(32));
  const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
  return { verifier, challenge };
}

async function discover(issuer) {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  assert.equal(res.status, 200);
  return res.json();
}

function authorizeUrl(meta, { scope = 'openid email profile', redirectUri = REDIRECT_URI, state, nonce, challenge, extra = {} }) {
  const u = new URL(meta.authorization_endpoint);
  const p = {
    client_id: CLIENT_ID, response_type: 'code', scope, redirect_uri: redirectUri, state, nonce, ...extra,
  };
  if (challenge) Object.assign(p, { code_challenge: challenge, code_challenge_method: 'S256' });
  for (const [k, v] of Object.entries(p)) if (v !== undefined) u.searchParams.set(k, v);
  return u.href;
}

// GET authorize -> 303 /interaction/UID -> GET form -> POST login -> follow.
async function loginFlow(meta, {
  login = 'teacher1@example.edu.tw', password = 'pw', scope, redirectUri = REDIRECT_URI, jar = new CookieJar(),
} = {}) {
  const state = b64u(crypto.randomBytes(12));
  const nonce = b64u(crypto.randomBytes(12));
  const { verifier, challenge } = pkce();
  const a = await req(jar, authorizeUrl(meta, { scope, redirectUri, state, nonce, challenge }));
  assert.equal(a.status, 303, a.text);
  const uid = new URL(a.location).pathname.match(/^\/interaction\/([^/]+)$/)?.[1];
  assert.ok(uid, `unexpected interaction location ${a.location}`);
  assert.deepEqual(jar.names(), ['_interaction', '_interaction_resume']);

  const page = await req(jar, a.location);
  assert.equal(page.status, 200);
  assert.match(page.text, new RegExp(`action="/interaction/${uid}/login"`));
  assert.match(page.text, /name="login"/);
  assert.match(page.text, /name="password"/);
  assert.match(page.text, new RegExp(`action="/interaction/${uid}/abort"`));

  const post = await req(jar, `${a.location}/login`, { method: 'POST', form: { login, password } });
  assert.equal(post.status, 303, post.text);
  assert.equal(post.location, `${meta.issuer}/auth/${uid}`);
  const { callback, response } = await follow(jar, post, redirectUri);
  assert.ok(callback, `no callback; last response ${response?.status} ${response?.text}`);
  return { callback, state, nonce, verifier, jar, uid };
}

async function tokenRequest(meta, { code, verifier, redirectUri = REDIRECT_URI, auth = 'basic', secret = CLIENT_SECRET }) {
  const form = { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier };
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (auth === 'basic') {
    headers.authorization = `Basic ${Buffer.from(`${encodeURIComponent(CLIENT_ID)}:${encodeURIComponent(secret)}`).toString('base64')}`;
  } else {
    Object.assign(form, { client_id: CLIENT_ID, client_secret: secret });
  }
  const res = await fetch(meta.token_endpoint, { method: 'POST', headers, body: new URLSearchParams(form) });
  return { status: res.status, body: await res.json() };
}

async function verifyIdToken(meta, idToken, { nonce }) {
  const [h, p, s] = idToken.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  assert.equal(header.alg, 'RS256');
  const jwks = await (await fetch(meta.jwks_uri)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, `kid ${header.kid} not in JWKS`);
  assert.equal(jwk.kty, 'RSA');
  assert.equal(jwk.d, undefined, 'JWKS must not leak private key material');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url')), 'bad ID token signature');
  const now = Math.floor(Date.now() / 1000);
  assert.equal(claims.iss, meta.issuer);
  assert.equal(claims.aud, CLIENT_ID);
  assert.equal(claims.nonce, nonce);
  assert.ok(claims.exp > now, 'ID token expired');
  assert.ok(claims.iat <= now + 5, 'iat in the future');
  return { header, claims };
}

// ------------------------------------------------------------------ tests

describe('loopback OIDC provider', async () => {
  const op = await startProvider();
  const meta = await discover(op.issuer);
  after(() => op.stop());

  test('discovery document', async () => {
    assert.match(op.issuer, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(meta.issuer, op.issuer);
    assert.equal(meta.authorization_endpoint, `${op.issuer}/auth`);
    assert.equal(meta.token_endpoint, `${op.issuer}/token`);
    assert.equal(meta.jwks_uri, `${op.issuer}/jwks`);
    assert.equal(meta.userinfo_endpoint, `${op.issuer}/me`);
    assert.deepEqual(meta.response_types_supported, ['code']);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.ok(meta.id_token_signing_alg_values_supported.includes('RS256'));
    for (const s of ['openid', 'email', 'profile', 'eduinfo']) assert.ok(meta.scopes_supported.includes(s), s);
    for (const c of ['sub', 'email', 'email_verified', 'name']) assert.ok(meta.claims_supported.includes(c), c);
    for (const m of ['client_secret_basic', 'client_secret_post']) assert.ok(meta.token_endpoint_auth_methods_supported.includes(m), m);
  });

  test('authorization code + PKCE, client_secret_basic, ID token verified', async () => {
    const { callback, state, nonce, verifier, jar } = await loginFlow(meta, { scope: 'openid email profile eduinfo' });
    assert.equal(callback.searchParams.get('state'), state);
    assert.equal(callback.searchParams.get('iss'), meta.issuer);
    const code = callback.searchParams.get('code');
    assert.ok(code);
    // _session (path=/) is the provider's login session; the resume cookie was
    // cleared; the stale _interaction cookie (path=/interaction/UID) is harmless.
    assert.ok(jar.names().includes('_session'));
    assert.ok(!jar.names().includes('_interaction_resume'));

    const t = await tokenRequest(meta, { code, verifier });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    assert.equal(t.body.token_type, 'Bearer');
    assert.equal(t.body.scope, 'openid email profile eduinfo');
    const { claims } = await verifyIdToken(meta, t.body.id_token, { nonce });
    assert.equal(claims.sub, 'g-1001');
    assert.equal(claims.email, 'teacher1@example.edu.tw');
    assert.equal(claims.email_verified, true);
    assert.equal(claims.name, '王老師');
    assert.deepEqual(claims.eduinfo, { schoolid: '000000', titles: ['教師'] });

    const ui = await fetch(meta.userinfo_endpoint, { headers: { authorization: `Bearer ${t.body.access_token}` } });
    assert.equal(ui.status, 200);
    const info = await ui.json();
    assert.equal(info.sub, 'g-1001');
    assert.equal(info.email, 'teacher1@example.edu.tw');

    // Codes are single-use.
    const again = await tokenRequest(meta, { code, verifier });
    assert.equal(again.status, 400);
    assert.equal(again.body.error, 'invalid_grant');
  });

  test('login by sub, client_secret_post, second redirect_uri, scopes limit claims', async () => {
    const { callback, nonce, verifier } = await loginFlow(meta, {
      login: 'g-1002', scope: 'openid email', redirectUri: REDIRECT_URI_2,
    });
    const t = await tokenRequest(meta, {
      code: callback.searchParams.get('code'), verifier, redirectUri: REDIRECT_URI_2, auth: 'post',
    });
    assert.equal(t.status, 200, JSON.stringify(t.body));
    const { claims } = await verifyIdToken(meta, t.body.id_token, { nonce });
    assert.equal(claims.sub, 'g-1002');
    assert.equal(claims.email, 'teacher2@example.edu.tw');
    assert.equal(claims.name, undefined, 'profile not requested');
  });

  test('existing provider session: second authorize returns a code without interaction', async () => {
    const first = await loginFlow(meta, { login: 'teacher3@example.edu.tw' });
    const { challenge, verifier } = pkce();
    const r = await req(first.jar, authorizeUrl(meta, { state: 's2', nonce: 'n2', challenge }));
    assert.equal(r.status, 303);
    const cb = new URL(r.location);
    assert.equal(cb.origin + cb.pathname, REDIRECT_URI);
    const t = await tokenRequest(meta, { code: cb.searchParams.get('code'), verifier });
    assert.equal(t.status, 200);
    const { claims } = await verifyIdToken(meta, t.body.id_token, { nonce: 'n2' });
    assert.equal(claims.sub, 'g-1003');
  });

  test('prompt=consent with a session is auto-granted by GET /interaction/UID', async () => {
    const first = await loginFlow(meta, { login: 'g-1002' });
    const { challenge, verifier } = pkce();
    const r = await req(first.jar, authorizeUrl(meta, { state: 's3', nonce: 'n3', challenge, extra: { prompt: 'consent' } }));
    assert.equal(r.status, 303);
    assert.match(r.location, /\/interaction\//);
    const { callback, seen } = await follow(first.jar, r, REDIRECT_URI);
    assert.ok(callback);
    assert.equal(seen.length, 2); // /interaction/UID (auto consent) then /auth/UID
    const t = await tokenRequest(meta, { code: callback.searchParams.get('code'), verifier });
    const { claims } = await verifyIdToken(meta, t.body.id_token, { nonce: 'n3' });
    assert.equal(claims.sub, 'g-1002');
  });

  test('wrong password re-shows the form with 401, then succeeds', async () => {
    const jar = new CookieJar();
    const { challenge } = pkce();
    const a = await req(jar, authorizeUrl(meta, { state: 's', nonce: 'n', challenge }));
    const bad = await req(jar, `${a.location}/login`, { method: 'POST', form: { login: 'g-1001', password: 'nope' } });
    assert.equal(bad.status, 401);
    assert.match(bad.text, /Invalid login or password/);
    const unknown = await req(jar, `${a.location}/login`, { method: 'POST', form: { login: 'nobody@example.edu.tw', password: 'pw' } });
    assert.equal(unknown.status, 401);
    const ok = await req(jar, `${a.location}/login`, { method: 'POST', form: { login: 'g-1001', password: 'pw' } });
    assert.equal(ok.status, 303);
    const { callback } = await follow(jar, ok, REDIRECT_URI);
    assert.ok(callback.searchParams.get('code'));
  });

  test('deny: POST /interaction/UID/abort ends with error=access_denied', async () => {
    const jar = new CookieJar();
    const { challenge } = pkce();
    const a = await req(jar, authorizeUrl(meta, { state: 'deny-state', nonce: 'n', challenge }));
    assert.equal(a.status, 303);
    const abort = await req(jar, `${a.location}/abort`, { method: 'POST', form: {} });
    assert.equal(abort.status, 303);
    const { callback } = await follow(jar, abort, REDIRECT_URI);
    assert.ok(callback);
    assert.equal(callback.searchParams.get('error'), 'access_denied');
    assert.equal(callback.searchParams.get('state'), 'deny-state');
    assert.equal(callback.searchParams.get('iss'), meta.issuer);
    assert.equal(callback.searchParams.get('code'), null);
  });

  test('PKCE is required and checked; bad secret is rejected', async () => {
    const jar = new CookieJar();
    const noPkce = await req(jar, authorizeUrl(meta, { state: 'x', nonce: 'n' }));
    assert.equal(noPkce.status, 303);
    const cb = new URL(noPkce.location);
    assert.equal(cb.origin + cb.pathname, REDIRECT_URI);
    assert.equal(cb.searchParams.get('error'), 'invalid_request');

    const { callback } = await loginFlow(meta);
    const badSecret = await tokenRequest(meta, { code: callback.searchParams.get('code'), verifier: pkce().verifier, secret: 'wrong' });
    assert.equal(badSecret.status, 401);
    assert.equal(badSecret.body.error, 'invalid_client');

    const { callback: cb2 } = await loginFlow(meta);
    const badVerifier = await tokenRequest(meta, { code: cb2.searchParams.get('code'), verifier: pkce().verifier });
    assert.equal(badVerifier.status, 400);
    assert.equal(badVerifier.body.error, 'invalid_grant');
  });

  test('unregistered redirect_uri is not redirected to', async () => {
    const { challenge } = pkce();
    const r = await req(new CookieJar(), authorizeUrl(meta, { redirectUri: 'http://127.0.0.1:9/evil', state: 's', nonce: 'n', challenge }));
    assert.equal(r.status, 400);
    assert.match(r.text, /redirect_uri/);
  });

  test('stdout carries only the READY line; stderr no library notices', () => {
    assert.equal(op.stdout(), `READY ${op.issuer}\n`);
    const noise = op.stderr().split('\n').filter((l) => l && !/Unsupported runtime/.test(l));
    assert.deepEqual(noise, []);
  });
});

describe('independent instances, manual consent, accounts file, SIGTERM', async () => {
  test('two instances have different issuers and signing keys', async () => {
    const a = await startProvider();
    const b = await startProvider();
    try {
      assert.notEqual(a.issuer, b.issuer);
      const ma = await discover(a.issuer);
      const mb = await discover(b.issuer);
      const ka = (await (await fetch(ma.jwks_uri)).json()).keys;
      const kb = (await (await fetch(mb.jwks_uri)).json()).keys;
      assert.notEqual(ka[0].n, kb[0].n);
      assert.notEqual(ka[0].kid, kb[0].kid);

      // A code from A is unknown to B.
      const { callback, verifier } = await loginFlow(ma);
      const t = await tokenRequest(mb, { code: callback.searchParams.get('code'), verifier });
      assert.equal(t.status, 400);
      assert.equal(t.body.error, 'invalid_grant');
    } finally {
      assert.equal(await a.stop(), 0);
      assert.equal(await b.stop(), 0);
    }
  });

  test('--manual-consent: consent page with confirm and deny', async () => {
    const op = await startProvider(['--manual-consent']);
    try {
      const meta = await discover(op.issuer);
      for (const decision of ['confirm', 'abort']) {
        const jar = new CookieJar();
        const { challenge, verifier } = pkce();
        const a = await req(jar, authorizeUrl(meta, { state: decision, nonce: 'n', challenge }));
        const login = await req(jar, `${a.location}/login`, { method: 'POST', form: { login: 'g-1001', password: 'pw' } });
        assert.equal(login.status, 303);
        const resume = await req(jar, login.location);
        assert.equal(resume.status, 303);
        const uid2 = new URL(resume.location).pathname.split('/')[2];
        assert.notEqual(`${meta.issuer}/interaction/${uid2}`, a.location);
        const page = await req(jar, resume.location);
        assert.equal(page.status, 200);
        assert.match(page.text, new RegExp(`action="/interaction/${uid2}/confirm"`));
        const post = await req(jar, `${resume.location}/${decision}`, { method: 'POST', form: {} });
        assert.equal(post.status, 303);
        const { callback } = await follow(jar, post, REDIRECT_URI);
        assert.equal(callback.searchParams.get('state'), decision);
        if (decision === 'confirm') {
          const t = await tokenRequest(meta, { code: callback.searchParams.get('code'), verifier });
          assert.equal(t.status, 200);
          const { claims } = await verifyIdToken(meta, t.body.id_token, { nonce: 'n' });
          assert.equal(claims.email, 'teacher1@example.edu.tw');
        } else {
          assert.equal(callback.searchParams.get('error'), 'access_denied');
        }
      }
    } finally {
      await op.stop();
    }
  });

  test('--accounts file and explicit --port', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'menshen-oidc-'));
    const file = path.join(dir, 'accounts.json');
    fs.writeFileSync(file, JSON.stringify([
      { sub: 'x-1', email: 'Student@Example.edu.tw', name: '陳同學', password: 'secret', email_verified: false },
    ]));
    // Find a free port, release it, then ask the provider to use it.
    const net = await import('node:net');
    const srv = net.createServer().listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const { port } = srv.address();
    await new Promise((r) => srv.close(r));
    const op = await startProvider(['--accounts', file], { port });
    try {
      assert.equal(op.issuer, `http://127.0.0.1:${port}`);
      const meta = await discover(op.issuer);
      const { callback, verifier, nonce } = await loginFlow(meta, { login: 'student@example.edu.tw', password: 'secret' });
      const t = await tokenRequest(meta, { code: callback.searchParams.get('code'), verifier });
      const { claims } = await verifyIdToken(meta, t.body.id_token, { nonce });
      assert.equal(claims.sub, 'x-1');
      assert.equal(claims.email_verified, false);
      assert.equal(claims.name, '陳同學');
      await assert.rejects(loginFlow(meta, { login: 'g-1001' }));
    } finally {
      assert.equal(await op.stop(), 0);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('bad arguments exit with status 2', async () => {
    const proc = spawn(process.execPath, [path.join(HERE, 'provider.mjs'), '--port', '0'], { stdio: 'ignore' });
    const [code] = await once(proc, 'exit');
    assert.equal(code, 2);
  });
});
