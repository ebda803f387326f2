#!/usr/bin/env node
// Loopback OpenID Connect provider for Menshen's test suite.
//
// A real `oidc-provider` (panva) instance on plain HTTP 127.0.0.1 with one
// confidential client, in-memory storage, a fresh RSA signing key per process
// and tiny browser-less interaction routes (login form + auto consent).
// See README.md in this directory for the exact HTTP sequence.
//
//   node provider.mjs --port PORT --client-id ID --client-secret SECRET \
//        --redirect-uri URI [--redirect-uri URI2 ...] [--issuer URL] \
//        [--accounts accounts.json] [--manual-consent] [--pkce-optional]
//
// Prints exactly one line `READY <issuer>` on stdout once listening.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { errors } from 'oidc-provider';

// ---------------------------------------------------------------- arguments

const USAGE = `usage: node provider.mjs --port PORT --client-id ID --client-secret SECRET
         --redirect-uri URI [--redirect-uri URI2 ...]
         [--issuer http://127.0.0.1:PORT] [--host 127.0.0.1]
         [--accounts accounts.json] [--manual-consent] [--pkce-optional]
         [--id-token-ttl SECONDS]`;

function fail(msg) {
  process.stderr.write(`provider.mjs: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

let args;
try {
  ({ values: args } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      issuer: { type: 'string' },
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true },
      accounts: { type: 'string' },
      'manual-consent': { type: 'boolean', default: false },
      'pkce-optional': { type: 'boolean', default: false },
      'id-token-ttl': { type: 'string', default: '3600' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  fail(err.message);
}
if (args.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (args.port === undefined || !/^\d+$/.test(args.port) || +args.port > 65535) fail('--port PORT is required (0 = pick a free port)');
if (!args['client-id']) fail('--client-id is required');
if (!args['client-secret']) fail('--client-secret is required');
if (!args['redirect-uri']?.length) fail('at least one --redirect-uri is required');
const idTokenTtl = Number.parseInt(args['id-token-ttl'], 10);
if (!(idTokenTtl > 0)) fail('--id-token-ttl must be a positive integer');

// ---------------------------------------------------------------- accounts

const DEFAULT_ACCOUNTS = [
  { sub: 'g-1001', email: 'teacher1@example.edu.tw', name: '王老師', password: 'pw' },
  { sub: 'g-1002', email: 'teacher2@example.edu.tw', name: '李老師', password: 'pw' },
  { sub: 'g-1003', email: 'teacher3@example.edu.tw', name: '張老師', password: 'pw' },
];

function loadAccounts(file) {
  if (!file) return DEFAULT_ACCOUNTS;
  let list;
  try {
    list = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    fail(`cannot read --accounts ${file}: ${err.message}`);
  }
  if (!Array.isArray(list) || list.length === 0) fail('--accounts must be a non-empty JSON array');
  for (const a of list) {
    if (!a || typeof a.sub !== 'string' || !a.sub) fail('every account needs a string "sub"');
  }
  return list;
}

const accounts = loadAccounts(args.accounts).map((a) => ({
  sub: a.sub,
  email: a.email,
  // `email_verified` may be set to false in accounts.json to test rejection.
  email_verified: a.email_verified ?? true,
  name: a.name,
  password: a.password ?? 'pw',
  // Placeholder for the MOE education-cloud `eduinfo` scope; passed verbatim.
  eduinfo: a.eduinfo ?? { schoolid: '000000', titles: ['教師'] },
}));

const bySub = new Map(accounts.map((a) => [a.sub, a]));

function lookup(login) {
  if (typeof login !== 'string' || !login) return undefined;
  const l = login.trim();
  return bySub.get(l)
    ?? accounts.find((a) => typeof a.email === 'string' && a.email.toLowerCase() === l.toLowerCase());
}

// ---------------------------------------------------------------- storage

// Minimal in-memory adapter (one store per process). Written here instead of
// using the library's quick-start adapter only to avoid its startup warning.
const store = new Map(); // key -> { payload, exp (ms epoch or Infinity) }
const now = () => Date.now();

function sget(key) {
  const e = store.get(key);
  if (!e) return undefined;
  if (e.exp <= now()) {
    store.delete(key);
    return undefined;
  }
  return e.payload;
}
function sset(key, payload, expiresIn) {
  store.set(key, { payload, exp: typeof expiresIn === 'number' ? now() + expiresIn * 1000 : Infinity });
}

const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

class MemoryAdapter {
  constructor(model) { this.model = model; }

  key(id) { return `${this.model}:${id}`; }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    if (this.model === 'Session') sset(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) sset(`userCode:${payload.userCode}`, id, expiresIn);
    if (GRANTABLE.has(this.model) && payload.grantId) {
      const gk = `grant:${payload.grantId}`;
      const members = sget(gk) ?? new Set();
      members.add(key);
      store.set(gk, { payload: members, exp: Infinity });
    }
    sset(key, payload, expiresIn);
  }

  async find(id) { return sget(this.key(id)); }

  async findByUid(uid) {
    const id = sget(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = sget(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const p = sget(this.key(id));
    if (p) p.consumed = Math.floor(now() / 1000);
  }

  async destroy(id) { store.delete(this.key(id)); }

  async revokeByGrantId(grantId) {
    const gk = `grant:${grantId}`;
    for (const key of sget(gk) ?? []) store.delete(key);
    store.delete(gk);
  }
}

// ---------------------------------------------------------------- keys

// A fresh RSA key per process: two instances never share signing keys.
function makeJwks() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  const pub = crypto.createPublicKey(privateKey).export({ format: 'jwk' });
  const kid = crypto.createHash('sha256').update(`${pub.n}.${pub.e}`).digest('base64url').slice(0, 16);
  return { keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] };
}

// ---------------------------------------------------------------- html

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="zh-Hant"><head><meta charset="utf-8"><title>${esc(title)}</title></head>
<body><h1>${esc(title)}</h1>
${body}
</body></html>
`;
}

function loginPage(uid, details, { error, login } = {}) {
  const client = details.params.client_id;
  return page('Test OP sign-in', `${error ? `<p id="error" class="error">${esc(error)}</p>` : ''}
<p>Client <code>${esc(client)}</code> requests scopes <code>${esc(details.params.scope ?? '')}</code>.</p>
<form id="login" method="post" action="/interaction/${esc(uid)}/login">
  <input type="text" name="login" placeholder="email or sub" value="${esc(login ?? '')}" autofocus>
  <input type="password" name="password" placeholder="password">
  <button type="submit">Sign in</button>
</form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort">
  <button type="submit">Cancel / deny</button>
</form>`);
}

function consentPage(uid, details) {
  const d = details.prompt.details;
  return page('Test OP consent', `<p>Client <code>${esc(details.params.client_id)}</code> asks for
<code>${esc([...(d.missingOIDCScope ?? [])].join(' '))}</code>
${d.missingOIDCClaims?.length ? `and claims <code>${esc(d.missingOIDCClaims.join(' '))}</code>` : ''}.</p>
<form id="confirm" method="post" action="/interaction/${esc(uid)}/confirm">
  <button type="submit">Allow</button>
</form>
<form id="abort" method="post" action="/interaction/${esc(uid)}/abort">
  <button type="submit">Deny</button>
</form>`);
}

// ---------------------------------------------------------------- provider config

const pkceRequired = !args['pkce-optional'];
const clientId = args['client-id'];
const redirectUris = args['redirect-uri'];

const configuration = {
  adapter: MemoryAdapter,
  jwks: makeJwks(),
  clients: [{
    client_id: clientId,
    client_secret: args['client-secret'],
    client_name: 'Menshen test client',
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    // oidc-provider accepts client_secret_post too for a *_basic client
    // (both are "client secret" mechanisms); see README.
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  // Scopes: openid email profile eduinfo (claims keys are scopes).
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    eduinfo: ['eduinfo'],
  },
  scopes: ['openid', 'email', 'profile', 'eduinfo'],
  responseTypes: ['code'],
  // Put the scope-requested claims into the ID token as Google does
  // (oidc-provider's default would only return them from userinfo).
  conformIdTokenClaims: false,
  async findAccount(ctx, sub) {
    const a = bySub.get(sub);
    if (!a) return undefined;
    return {
      accountId: a.sub,
      async claims() {
        const c = { sub: a.sub, email_verified: a.email_verified, eduinfo: a.eduinfo };
        if (a.email !== undefined) c.email = a.email;
        if (a.name !== undefined) c.name = a.name;
        return c;
      },
    };
  },
  pkce: { required: () => pkceRequired },
  clientBasedCORS(ctx, origin, client) {
    return client.redirectUris.some((u) => URL.parse(u)?.origin === origin);
  },
  cookies: {
    // Plain HTTP on loopback: no `secure` flag (oidc-provider only adds it when
    // the request is https), unsigned cookies, SameSite=Lax.
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  interactions: {
    // Absolute URL on the issuer's origin (oidc-provider sets the
    // `_interaction` cookie with path=/interaction/UID).
    url: (ctx, interaction) => new URL(`/interaction/${interaction.uid}`, ctx.oidc.issuer).href,
  },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    revocation: { enabled: false },
    introspection: { enabled: false },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.body = page('Sign out', `${form}<button form="op.logoutForm" type="submit" name="logout" value="yes">Sign out</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('Signed out', '<p>Signed out.</p>');
      },
    },
  },
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: 60,
    IdToken: idTokenTtl,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<pre id="error">${esc(out.error)}: ${esc(out.error_description ?? '')}</pre>`);
  },
};

// ---------------------------------------------------------------- interaction routes

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new errors.InvalidRequest('request body too large');
    chunks.push(c);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

async function grantFor(provider, details, accountId, { all }) {
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId, clientId: details.params.client_id });
  if (all) {
    // Auto-consent at login time: everything that was asked for.
    if (details.params.scope) grant.addOIDCScope(details.params.scope);
    if (details.params.claims) {
      try {
        const c = JSON.parse(details.params.claims);
        const names = new Set([...Object.keys(c.id_token ?? {}), ...Object.keys(c.userinfo ?? {})]);
        if (names.size) grant.addOIDCClaims([...names]);
      } catch { /* validated by the provider already */ }
    }
  } else {
    const d = details.prompt.details;
    if (d.missingOIDCScope) grant.addOIDCScope(d.missingOIDCScope.join(' '));
    if (d.missingOIDCClaims) grant.addOIDCClaims(d.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  return grant.save();
}

function interactionRoutes(provider) {
  return async function interactions(ctx, next) {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
    if (!m) return next();
    const [, uid, action] = m;
    ctx.set('cache-control', 'no-store');
    try {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.uid !== uid) throw new errors.SessionNotFound('interaction cookie does not match the URL');
      const prompt = details.prompt.name;

      const finish = async (result, merge = true) => {
        const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
        ctx.status = 303;
        ctx.redirect(returnTo);
      };

      if (ctx.method === 'GET' && action === undefined) {
        if (prompt === 'login') {
          ctx.type = 'html';
          ctx.body = loginPage(uid, details);
          return undefined;
        }
        if (prompt === 'consent') {
          if (args['manual-consent']) {
            ctx.type = 'html';
            ctx.body = consentPage(uid, details);
            return undefined;
          }
          // auto-grant
          const grantId = await grantFor(provider, details, details.session.accountId, { all: false });
          return finish({ consent: { grantId } });
        }
        throw new errors.InvalidRequest(`unsupported prompt ${prompt}`);
      }

      if (ctx.method !== 'POST' || action === undefined) {
        ctx.status = 405;
        ctx.body = 'method not allowed';
        return undefined;
      }
      const form = await readForm(ctx.req);

      if (action === 'abort') {
        return finish({
          error: 'access_denied',
          error_description: 'End-User aborted interaction',
        }, false);
      }

      if (action === 'login') {
        if (prompt !== 'login') throw new errors.InvalidRequest(`expected prompt login, got ${prompt}`);
        const login = form.get('login') ?? form.get('email') ?? form.get('sub');
        const account = lookup(login);
        if (!account || form.get('password') !== account.password) {
          ctx.status = 401;
          ctx.type = 'html';
          ctx.body = loginPage(uid, details, { error: 'Invalid login or password', login });
          return undefined;
        }
        const result = { login: { accountId: account.sub } };
        if (!args['manual-consent']) {
          result.consent = { grantId: await grantFor(provider, details, account.sub, { all: true }) };
        }
        return finish(result);
      }

      // action === 'confirm'
      if (prompt !== 'consent') throw new errors.InvalidRequest(`expected prompt consent, got ${prompt}`);
      const grantId = await grantFor(provider, details, details.session.accountId, { all: false });
      return finish({ consent: { grantId } });
    } catch (err) {
      const status = err.statusCode ?? 400;
      ctx.status = status >= 500 ? 500 : status;
      ctx.type = 'html';
      ctx.body = page('Error', `<pre id="error">${esc(err.error ?? err.name)}: ${esc(err.error_description ?? err.message)}</pre>`);
      if (ctx.status >= 500) process.stderr.write(`provider.mjs: ${err.stack}\n`);
      return undefined;
    }
  };
}

// ---------------------------------------------------------------- start

const server = http.createServer();
server.on('error', (err) => {
  process.stderr.write(`provider.mjs: ${err.message}\n`);
  process.exit(1);
});

server.listen(+args.port, args.host, () => {
  const { port } = server.address();
  const issuer = args.issuer ?? `http://${args.host}:${port}`;
  const provider = new Provider(issuer, configuration);
  provider.proxy = false;
  provider.use(interactionRoutes(provider));
  provider.on('server_error', (ctx, err) => process.stderr.write(`provider.mjs: server_error ${err.stack}\n`));
  server.on('request', provider.callback());
  process.stdout.write(`READY ${issuer}\n`);
});

function shutdown() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
