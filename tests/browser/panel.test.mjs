// The operator panel in headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no downloaded browser). Started by tests/tests/e2e/panel.rs, which runs
// the API on real services and passes in:
//   DOCKET_URL              the API, e.g. http://127.0.0.1:40123
//   OPERATOR_EMAIL/PASSWORD an active operator
//   TENANT_ID/SLUG/TOKEN    the tenant the operator acts on (owner's access token)
//   OTHER_TOKEN             another tenant's owner token (must be unaffected)
//   ARTIFACTS               where screenshots go
// Scenarios run in order and share one signed-in browser context.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run through tests/tests/e2e/panel.rs)`);
  return v;
};
const BASE = env('DOCKET_URL');
const EMAIL = env('OPERATOR_EMAIL');
const PASSWORD = env('OPERATOR_PASSWORD');
const TENANT = { id: env('TENANT_ID'), slug: env('TENANT_SLUG'), token: env('TENANT_TOKEN') };
const OTHER_TOKEN = env('OTHER_TOKEN');
const ARTIFACTS = env('ARTIFACTS');
mkdirSync(ARTIFACTS, { recursive: true });
const COOKIE = '__Host-docket_panel';

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // As root in a container Chromium needs --no-sandbox; the rest keeps it off the network.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
after(() => browser.close());
const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
const page = await context.newPage();

const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });

/** An API call as a tenant. */
async function api(method, route, token, body) {
  const r = await fetch(BASE + route, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  let json = null;
  try { json = await r.json(); } catch { /* not JSON */ }
  return { status: r.status, headers: r.headers, json };
}

/** Retries `probe` until it returns true (switches and suspensions apply within a second or two). */
async function eventually(what, probe, ms = 5000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await probe();
    if (last === true) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`${what}: not within ${ms} ms (last: ${JSON.stringify(last)})`);
}

const question = { question: 'What is the governing law of this agreement?' };

/** The tenant's row on the tenants page, after searching for it. */
async function tenantRow() {
  await page.goto(`${BASE}/ops/panel/tenants?q=${TENANT.slug}`);
  return page.locator(`#tenant-${TENANT.slug}`);
}

test('a page of the panel sends the signed-out browser to sign in', async () => {
  await page.goto(`${BASE}/ops/panel/tenants`);
  assert.ok(page.url().endsWith('/ops/panel/login'), page.url());
  await page.getByRole('heading', { name: 'Docket operations' }).waitFor();
});

test('a wrong password is refused', async () => {
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill('not the password');
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/ops/panel/login') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  assert.equal(resp.status(), 401);
  await page.getByRole('alert').filter({ hasText: 'the email or password is wrong' }).waitFor();
  const cookies = await context.cookies(BASE);
  assert.ok(!cookies.some((c) => c.name === COOKIE), 'no session after a refused sign-in');
  await shot('login-refused');
});

test('sign in starts a session with a __Host- cookie', async () => {
  await page.getByLabel('Email').fill(EMAIL);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.waitForURL(`${BASE}/ops/panel/tenants`);
  await page.getByRole('heading', { name: 'Tenants' }).waitFor();
  const c = (await context.cookies(BASE)).find((c) => c.name === COOKIE);
  assert.ok(c, 'session cookie set');
  assert.equal(c.httpOnly, true);
  assert.equal(c.secure, true);
  assert.equal(c.sameSite, 'Strict');
  assert.equal(c.path, '/');
  await page.locator(`#tenant-${TENANT.slug}`).waitFor();
  await shot('tenants');
});

test('suspending a tenant in the panel makes its next API request 403 tenant_suspended', async () => {
  assert.equal((await api('GET', '/v1/documents', TENANT.token)).status, 200);
  const row = await tenantRow();
  await row.locator('summary', { hasText: 'Suspend' }).click();
  await row.getByLabel('Reason').first().fill('chargeback investigation #4411');
  await row.getByRole('button', { name: 'Suspend tenant' }).click();
  await page.getByRole('status').filter({ hasText: 'Tenant suspended' }).waitFor();
  await page.locator(`#tenant-${TENANT.slug} .status-suspended`).waitFor();
  await shot('tenant-suspended');
  await eventually('tenant refused', async () => {
    const r = await api('GET', '/v1/documents', TENANT.token);
    return r.status === 403 && r.json?.error?.code === 'tenant_suspended' ? true : r;
  });
  assert.equal((await api('GET', '/v1/documents', OTHER_TOKEN)).status, 200, 'the other tenant is unaffected');

  const again = await tenantRow();
  await again.locator('summary', { hasText: 'Resume' }).click();
  await again.getByLabel('Reason').first().fill('investigation closed');
  await again.getByRole('button', { name: 'Resume tenant' }).click();
  await page.getByRole('status').filter({ hasText: 'Tenant resumed' }).waitFor();
  await eventually('tenant served again', async () => {
    const r = await api('GET', '/v1/documents', TENANT.token);
    return r.status === 200 ? true : r;
  });
});

test('a per-tenant incident switch makes that tenant\'s queries 503 until lifted', async () => {
  await page.goto(`${BASE}/ops/panel/switches`);
  const form = page.locator('#set-switch');
  await form.getByLabel('Class').selectOption('query');
  await form.getByLabel('Tenant').fill(TENANT.slug);
  await form.getByLabel('Reason').fill('runaway client, incident 77');
  await form.getByRole('button', { name: 'Set switch' }).click();
  await page.getByRole('status').filter({ hasText: 'Switch set' }).waitFor();
  await page.getByRole('cell', { name: `tenant ${TENANT.slug}` }).waitFor();
  await shot('switches');
  await eventually('queries refused', async () => {
    const r = await api('POST', '/v1/queries', TENANT.token, question);
    return r.status === 503 ? true : r;
  });
  const other = await api('POST', '/v1/queries', OTHER_TOKEN, question);
  assert.notEqual(other.status, 503, 'the other tenant still asks');
  assert.equal((await api('GET', '/v1/documents', TENANT.token)).status, 200, 'reads are another class');

  await page.getByRole('row', { name: new RegExp(`tenant ${TENANT.slug}`) }).getByRole('button', { name: 'Lift' }).click();
  await page.getByRole('status').filter({ hasText: 'Switch lifted' }).waitFor();
  await eventually('queries served again', async () => {
    const r = await api('POST', '/v1/queries', TENANT.token, question);
    return r.status !== 503 ? true : r;
  });
});

test('a rate-limit override set in the panel changes the tenant\'s limit', async () => {
  const before = await api('GET', '/v1/documents', TENANT.token);
  const limitBefore = Number(before.headers.get('ratelimit-limit'));
  assert.ok(limitBefore > 0, 'reads are rate-limited');
  const burst = limitBefore === 7 ? 9 : 7;
  const row = await tenantRow();
  await row.locator('summary', { hasText: 'Rate limit' }).click();
  const form = row.locator('form[action$="/rate-override"]');
  await form.getByLabel('Class').selectOption('read');
  await form.getByLabel('Per minute').fill(String(burst * 10));
  await form.getByLabel('Burst').fill(String(burst));
  await form.getByLabel('Reason').fill('load test agreed with customer');
  await form.getByRole('button', { name: 'Set override' }).click();
  await page.getByRole('status').filter({ hasText: 'Rate-limit override set' }).waitFor();
  await page.locator(`#tenant-${TENANT.slug} .override`).filter({ hasText: `read: ${burst * 10}/min` }).waitFor();
  await shot('tenant-override');
  await eventually('override applied', async () => {
    const r = await api('GET', '/v1/documents', TENANT.token);
    return Number(r.headers.get('ratelimit-limit')) === burst ? true : r.headers.get('ratelimit-limit');
  });
  const other = await api('GET', '/v1/documents', OTHER_TOKEN);
  assert.notEqual(Number(other.headers.get('ratelimit-limit')), burst, 'only this tenant');
});

test('a plan change in the panel is the tenant\'s plan at once', async () => {
  assert.equal((await api('GET', '/v1/me', TENANT.token)).json?.tenant?.plan, 'team');
  const row = await tenantRow();
  await row.locator('summary', { hasText: 'Plan' }).click();
  await row.locator('form[action$="/plan"] select[name="plan"]').selectOption('business');
  await row.getByRole('button', { name: 'Change plan' }).click();
  await page.getByRole('status').filter({ hasText: 'Plan changed' }).waitFor();
  await page.locator(`#tenant-${TENANT.slug} td`).nth(1).filter({ hasText: 'business' }).waitFor();
  await eventually('new plan served', async () => {
    const r = await api('GET', '/v1/me', TENANT.token);
    return r.json?.tenant?.plan === 'business' ? true : r.json;
  });
});

test('a cross-site POST, and a same-site one without the token, change nothing', async () => {
  // A page on another origin (another port of the same host: same-site, so even
  // SameSite=Strict sends the cookie; the Origin check must stop it).
  const evil = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(`<!doctype html><form id="f" method="post" action="${BASE}/ops/panel/tenants/${TENANT.id}/suspend">
      <input name="reason" value="forged"><input name="slug" value="${TENANT.slug}"><input name="csrf" value="guessed"></form>
      <script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  try {
    const port = evil.address().port;
    const [resp] = await Promise.all([
      page.waitForResponse((r) => r.url().includes(`/tenants/${TENANT.id}/suspend`)),
      page.goto(`http://127.0.0.1:${port}/`),
    ]);
    assert.equal(resp.status(), 403);
    assert.match(await resp.text(), /cross_site_request/);
  } finally {
    evil.close();
  }
  // From the panel's own origin, but without the session's token.
  await page.goto(`${BASE}/ops/panel/tenants`);
  const status = await page.evaluate(async (id) => {
    const r = await fetch(`/ops/panel/tenants/${id}/suspend`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'reason=no+token',
    });
    return [r.status, await r.text()];
  }, TENANT.id);
  assert.equal(status[0], 403);
  assert.match(status[1], /csrf_token_invalid/);
  assert.equal((await api('GET', '/v1/documents', TENANT.token)).status, 200, 'still active');
});

test('every page renders: imports (live), jobs, billing, audit with its verification, requests', async () => {
  const polled = page.waitForRequest((r) => r.url().endsWith('/ops/panel/imports/rows'), { timeout: 6000 });
  await page.goto(`${BASE}/ops/panel/imports`);
  await page.getByRole('heading', { name: 'Imports in progress' }).waitFor();
  await polled; // htmx loaded (same-origin script under the page's CSP) and refreshes the table
  await shot('imports');
  await page.goto(`${BASE}/ops/panel/jobs`);
  await page.getByRole('heading', { name: 'Failed and stalled jobs' }).waitFor();
  await shot('jobs');
  await page.goto(`${BASE}/ops/panel/billing`);
  await page.getByRole('heading', { name: 'Billing' }).waitFor();
  await shot('billing');
  await page.goto(`${BASE}/ops/panel/audit?action=ops.tenants`);
  await page.locator('#verify-result').filter({ hasText: 'Chain verified' }).waitFor();
  await page.getByRole('cell', { name: 'ops.tenants.suspend' }).first().waitFor();
  await shot('audit-platform');
  await page.goto(`${BASE}/ops/panel/audit?tenant=${TENANT.slug}`);
  await page.getByRole('heading', { name: `Audit trail: tenant ${TENANT.slug}` }).waitFor();
  await page.locator('#verify-result').filter({ hasText: 'Chain verified' }).waitFor();
  await shot('audit-tenant');
  await page.goto(`${BASE}/ops/panel/requests`);
  await page.getByRole('heading', { name: 'Exports and deletions' }).waitFor();
  await shot('requests');
});

test('the API reference at /docs renders offline from the served spec', async () => {
  const docs = await browser.newPage();
  const elsewhere = [];
  docs.on('request', (r) => { if (!r.url().startsWith(BASE) && !r.url().startsWith('data:')) elsewhere.push(r.url()); });
  await docs.goto(`${BASE}/docs/`);
  await docs.getByRole('heading', { name: /Docket API/ }).first().waitFor();
  // An operation from the spec, rendered by Swagger UI.
  await docs.locator('.opblock-summary-path', { hasText: '/v1/queries' }).first().waitFor();
  await docs.screenshot({ path: path.join(ARTIFACTS, 'api-docs.png'), fullPage: false });
  assert.deepEqual(elsewhere, [], 'nothing is loaded from another origin');
  await docs.close();
});

test('sign out ends the session on the server, not only in this browser', async () => {
  const old = (await context.cookies(BASE)).find((c) => c.name === COOKIE);
  assert.ok(old);
  await page.goto(`${BASE}/ops/panel/tenants`);
  await page.getByRole('button', { name: 'Sign out' }).click();
  await page.waitForURL(`${BASE}/ops/panel/login`);
  assert.ok(!(await context.cookies(BASE)).some((c) => c.name === COOKIE), 'cookie removed');
  // The old cookie, replayed by hand (as a thief would), no longer opens anything.
  const replay = await browser.newContext();
  const r = await replay.request.get(`${BASE}/ops/panel/tenants`, {
    headers: { cookie: `${COOKIE}=${old.value}` },
    maxRedirects: 0,
  });
  assert.equal(r.status(), 303);
  assert.equal(r.headers().location, '/ops/panel/login');
  await replay.close();
});
