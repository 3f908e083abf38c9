import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, type Role } from '../../src/application/access';
import { CONSOLE_DIR } from '../../src/composition-root';
import { createTestApp, TEST_TOKEN, type TestApp } from '../support/app';
import { ACCOUNT_NUMBER, deliverDecember2023, OTHER_ACCOUNT_NUMBER, TRANSACTIONS, webhookBody } from '../support/december-2023';
import { eventually } from '../support/postgres';
import { ROOT } from '../support/service';

/**
 * The console in Debian's Chromium (never a downloaded browser), driven by playwright-core against the service
 * listening on a free port, on a database of its own. `CONSOLE_SCREENSHOT=1` also saves docs/console-statement.png.
 */
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const HOW_TO_RUN = '`apt-get install -y chromium`, then `npx vitest run test/browser` (.ci/run installs it)';
const API_TOKEN = 'console-browser-admin-token-0123456789';

if (!existsSync(CHROMIUM)) console.warn(`[skipped] the console in a real browser: ${CHROMIUM} is not installed; to run it: ${HOW_TO_RUN}`);

// What page.evaluate callbacks touch: they run in the page, but are type-checked here without the DOM library.
declare const document: { documentElement: { lang: string; scrollWidth: number; clientWidth: number }; activeElement: { textContent: string | null; classList: { contains(c: string): boolean } } | null };
declare const sessionStorage: { length: number };
declare const localStorage: object;

/** Same text whatever space Intl put between figure and symbol (vi-VN writes a no-break space). */
const plain = (text: string) => text.replace(/[\u00a0\u202f]/g, ' ');

describe.skipIf(!existsSync(CHROMIUM))("the accountants' console in Chromium", () => {
  let t: TestApp;
  let base: string;
  let context: BrowserContext;
  let profile: string;
  const keys = {} as Record<Exclude<Role, 'admin'>, string>;
  const { dec01, dec02, dec04, dec05, dec06, dec07 } = TRANSACTIONS;

  beforeAll(async () => {
    if (!existsSync(join(CONSOLE_DIR, 'index.html'))) execFileSync('npm', ['run', 'build:console'], { cwd: ROOT, stdio: 'inherit' });
    t = await createTestApp({ API_TOKEN });
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
    for (const role of ['accountant', 'auditor', 'operator'] as const) {
      const made = await createApiKey(t.stores.apiKeys, { name: `${role}-browser`, role, now: new Date() });
      if (!made.ok) throw new Error(made.error);
      keys[role] = made.value.key;
    }
    const post = async (body: string) => {
      const res = await fetch(`${base}/webhooks/bankhub?token=${TEST_TOKEN}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return ((await res.json()) as { status: string }).status;
    };
    await deliverDecember2023(post, () => t.runner.caughtUp());
    profile = await mkdtemp(join(tmpdir(), 'console-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      locale: 'en-US',
      // The browser's own zone is not the bank's: times must still read in UTC+7.
      timezoneId: 'UTC',
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
  });
  afterAll(async () => {
    await context?.close();
    await t?.close();
    if (profile) await rm(profile, { recursive: true, force: true });
  });

  /** A new tab (its own session storage) that records every console error and uncaught exception. */
  async function openTab(): Promise<{ page: Page; errors: string[] }> {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    return { page, errors };
  }

  async function signIn(page: Page, key: string): Promise<void> {
    await page.goto(`${base}/`);
    await page.getByLabel(/^(API key|Khóa API)$/).fill(key);
    await page.getByRole('button', { name: /^(Sign in|Đăng nhập)$/ }).click();
    await page.getByRole('button', { name: /^(Sign out|Đăng xuất)$/ }).waitFor();
  }

  const rowTransactionIds = (page: Page) =>
    page.locator('tr.line').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-transaction-id')));

  async function openStatement(page: Page): Promise<void> {
    await page.getByRole('link', { name: ACCOUNT_NUMBER, exact: true }).click();
    await page.getByRole('heading', { name: 'December 2023' }).waitFor();
  }

  async function axeViolations(page: Page): Promise<string[]> {
    // Evaluated through the DevTools protocol, so the page's CSP (scripts from files only) does not stop it.
    await page.evaluate(await readFile(join(ROOT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8'));
    const violations = await page.evaluate(async () => {
      const result = await (globalThis as unknown as { axe: { run(o: object): Promise<{ violations: { id: string; nodes: { target: string[] }[] }[] }> } }).axe.run({
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
      });
      return result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    });
    return violations;
  }

  it('does what the issue asks: admin key, English, account list, December 2023 with its break and late line, the CSV, no console error', async () => {
    const { page, errors } = await openTab();
    await signIn(page, API_TOKEN);

    const row = page.locator('tr', { has: page.getByRole('link', { name: ACCOUNT_NUMBER, exact: true }) });
    await row.waitFor();
    expect(await row.innerText()).toContain('₫20,250,000');
    expect(await row.innerText()).toContain('28/12/2023 13:20');

    await openStatement(page);
    expect(await rowTransactionIds(page)).toEqual([dec01.id, dec02.id, dec04.id, dec05.id, dec06.id, dec07.id]);
    const summary = plain(await page.locator('dl.summary').innerText());
    expect(summary).toContain('₫15,000,000'); // opening: before(dec-01)
    expect(summary).toContain('₫20,250,000'); // closing
    expect(summary).toMatch(/Reconciled\s+✗ No/);

    // The break sits between the two lines it separates, with what is missing and its healing state.
    const breakRow = page.locator('tr.break-row');
    expect(await breakRow.count()).toBe(1);
    expect(await breakRow.innerText()).toContain('Break: ₫1,200,000 missing between these two lines');
    expect(await breakRow.innerText()).toContain('Healing: not tried yet');
    const around = await breakRow.evaluate((tr) => [tr.previousElementSibling?.getAttribute('data-transaction-id'), tr.nextElementSibling?.getAttribute('data-transaction-id')]);
    expect(around).toEqual([dec02.id, dec04.id]);

    // The late delivery is marked in words, not by colour alone.
    const late = page.locator('tr.line.late');
    expect(await late.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-transaction-id')))).toEqual([dec05.id]);
    expect(await late.innerText()).toContain('Late');
    expect(await page.locator('.chart-canvas canvas').count()).toBe(1);
    expect(await page.locator('.chart-canvas').getAttribute('data-break-marks')).toBe('1');

    if (process.env.CONSOLE_SCREENSHOT) await page.screenshot({ path: join(ROOT, 'docs', 'console-statement.png'), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'CSV' }).click()]);
    expect(download.suggestedFilename()).toBe(`statement-${ACCOUNT_NUMBER}-2023-12-01-2023-12-31.csv`);
    const csv = await readFile(await download.path());
    expect([...csv.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    const records = csv.subarray(3).toString('utf8').trimEnd().split('\r\n');
    expect(records[0]).toMatch(/^row,transactionId,transactionDate,/);
    expect(records.map((r) => r.split(',')[0])).toEqual(['row', 'opening', 'line', 'line', 'line', 'line', 'line', 'line', 'closing']);
    expect(records.filter((r) => r.startsWith('line,')).map((r) => r.split(',')[1])).toEqual([dec01.id, dec02.id, dec04.id, dec05.id, dec06.id, dec07.id]);
    const apiCsv = await fetch(`${base}/accounts/${new URL(page.url()).hash.split('/')[2]!.split('?')[0]}/statement?from=2023-12-01&to=2023-12-31&format=csv`, {
      headers: { authorization: `Bearer ${API_TOKEN}` },
    });
    expect(Buffer.from(await apiCsv.arrayBuffer()).equals(csv)).toBe(true);

    expect(errors).toEqual([]);
    await page.close();
  });

  it('finds an account by search, sorts by balance, and opens it from the keyboard', async () => {
    const { page, errors } = await openTab();
    await signIn(page, keys.accountant);
    await page.locator('table.accounts tbody tr').nth(1).waitFor();
    await page.getByRole('button', { name: 'Balance' }).click();
    const numbers = () => page.locator('table.accounts tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-account-number')));
    expect(await numbers()).toEqual([OTHER_ACCOUNT_NUMBER, ACCOUNT_NUMBER]); // 1 750 000 < 20 250 000
    expect(await page.getByRole('columnheader', { name: 'Balance' }).getAttribute('aria-sort')).toBe('ascending');
    await page.getByRole('button', { name: 'Balance' }).click();
    expect(await numbers()).toEqual([ACCOUNT_NUMBER, OTHER_ACCOUNT_NUMBER]);

    await page.getByLabel('Search accounts').fill('9988');
    await eventually(async () => expect(await numbers()).toEqual([ACCOUNT_NUMBER]));
    // Keyboard only: tab from the search field to the account's link, and Enter opens the statement.
    await page.getByLabel('Search accounts').focus();
    for (let i = 0; i < 20; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement?.textContent)) === ACCOUNT_NUMBER) break;
    }
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'December 2023' }).waitFor();
    expect(errors).toEqual([]);
    await page.close();
  });

  it("shows an auditor a line's event, its raw payload with the SHA-256, and the conflicting repeat", async () => {
    const { page, errors } = await openTab();
    await signIn(page, keys.auditor);
    await openStatement(page);
    await page.getByRole('button', { name: `Event & payload of transaction ${dec01.id}` }).click();
    const dialog = page.getByRole('dialog', { name: `Event & payload of transaction ${dec01.id}` });
    await dialog.waitFor();
    await dialog.locator('section.event').nth(1).locator('pre.raw-body').waitFor();
    expect(await dialog.innerText()).toContain('1 conflicting repeats received: the first version stays authoritative.');

    const booked = dialog.locator('section.event').nth(0);
    expect(await booked.getAttribute('data-event-type')).toBe('BalanceChanged');
    const body = webhookBody(dec01);
    const sha = createHash('sha256').update(body).digest('hex');
    await booked.getByText('✓ matches the bytes received').waitFor();
    expect(await booked.locator('[data-sha256]').innerText()).toBe(sha);
    const raw = await booked.locator('pre.raw-body').innerText();
    expect(raw).toContain('\n    "accountNumber": "0099887766",');
    expect(raw).toContain('"amount": 5000000,');
    expect(raw.replace(/\s+/g, '')).toBe(body.replace(/\s+/g, ''));

    const repeat = dialog.locator('section.event').nth(1);
    expect(await repeat.getAttribute('data-event-type')).toBe('ConflictingDuplicateReceived');
    expect(await repeat.locator('pre.raw-body').innerText()).toContain('Thu tiền hàng, HĐ 0112 (sửa)');

    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('offers each role only what it may call: no payloads for an accountant, only projections for an operator', async () => {
    const accountant = await openTab();
    await signIn(accountant.page, keys.accountant);
    const nav = (page: Page) => page.getByRole('navigation', { name: 'Main' }).getByRole('link').allInnerTexts();
    expect(await nav(accountant.page)).toEqual(['Accounts', 'Breaks', 'Anomalies']);
    await openStatement(accountant.page);
    expect(await accountant.page.locator('tr.line').count()).toBe(6);
    expect(await accountant.page.getByRole('button', { name: /Event & payload/ }).count()).toBe(0);
    expect(accountant.errors).toEqual([]);
    await accountant.page.close();

    const operator = await openTab();
    const asked: string[] = [];
    operator.page.on('request', (r) => asked.push(new URL(r.url()).pathname));
    await signIn(operator.page, keys.operator);
    expect(await nav(operator.page)).toEqual(['Projections']);
    await operator.page.getByRole('cell', { name: 'ledger', exact: true }).waitFor();
    await operator.page.goto(`${base}/#/accounts`);
    await operator.page.getByText('A key with the role operator may not read anything this console shows.').waitFor();
    expect(asked.filter((p) => /^\/(accounts|breaks|anomalies|audit)/.test(p))).toEqual([]);
    expect(operator.errors).toEqual([]);
    await operator.page.close();
  });

  it('lists breaks (open first) and anomalies across accounts, each linking to its place in the statement', async () => {
    const { page, errors } = await openTab();
    await signIn(page, API_TOKEN);
    await page.getByRole('link', { name: 'Breaks' }).click();
    const first = page.locator('tbody tr').first();
    await first.waitFor();
    expect(plain(await first.innerText())).toMatch(/^Open\s+0099887766 VietinBank\s+₫1,200,000/);
    await first.getByRole('link', { name: 'Show in statement' }).click();
    await page.getByRole('heading', { name: 'December 2023' }).waitFor();
    const target = page.locator('tr.break-row.target');
    await target.waitFor();
    expect(await page.evaluate(() => document.activeElement?.classList.contains('break-row'))).toBe(true);

    await page.getByRole('link', { name: 'Anomalies' }).click();
    const lateRow = page.locator('tbody tr', { hasText: 'Late delivery' });
    await lateRow.waitFor();
    await lateRow.getByRole('link', { name: dec05.id }).click();
    await page.getByRole('heading', { name: 'December 2023' }).waitFor();
    await page.locator(`tr.line.target[data-transaction-id="${dec05.id}"]`).waitFor();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('picks a period: the month after, and a from–to range', async () => {
    const { page, errors } = await openTab();
    await signIn(page, keys.accountant);
    await openStatement(page);
    await page.getByRole('button', { name: 'Next month ›' }).click();
    await page.getByRole('heading', { name: 'January 2024' }).waitFor();
    await page.getByText('No transaction in this period.').waitFor();
    expect(plain(await page.locator('dl.summary').innerText())).toContain('₫20,250,000'); // opening = December's closing
    await page.getByLabel('From – to').check();
    await page.getByLabel('From', { exact: true }).fill('2023-12-08');
    await page.getByLabel('To', { exact: true }).fill('2023-12-12');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.getByRole('heading', { name: '08/12/2023 – 12/12/2023' }).waitFor();
    expect(await rowTransactionIds(page)).toEqual([dec04.id, dec05.id]);
    expect(errors).toEqual([]);
    await page.close();
  });

  it("shows the API's problems in words", async () => {
    const { page } = await openTab();
    await page.goto(`${base}/`);
    await page.getByLabel('API key').fill('bl_not-a-key-at-all');
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.waitFor();
    expect(await alert.innerText()).toContain('Unknown or revoked API key');
    expect(await alert.innerText()).toContain('send Authorization: Bearer <key>');

    await signIn(page, keys.accountant);
    const accountId = await page.getByRole('link', { name: ACCOUNT_NUMBER, exact: true }).getAttribute('href');
    await page.goto(`${base}/${accountId}?from=2023-12-31&to=2023-12-01`);
    const problem = page.getByRole('alert');
    await problem.waitFor();
    expect(await problem.innerText()).toContain('The request is invalid');
    expect(await problem.innerText()).toContain('querystring.from: must not be after to');
    await page.close();
  });

  it('speaks Vietnamese when chosen, remembers it, and forgets the key at sign-out', async () => {
    const { page, errors } = await openTab();
    await signIn(page, keys.accountant);
    await page.getByLabel('Language').selectOption('vi');
    await page.getByRole('heading', { name: 'Tài khoản' }).waitFor();
    const row = page.locator('tr', { has: page.getByRole('link', { name: ACCOUNT_NUMBER, exact: true }) });
    expect(plain(await row.innerText())).toContain('20.250.000 ₫');
    expect(await page.evaluate(() => document.documentElement.lang)).toBe('vi');

    await page.reload();
    await page.getByRole('heading', { name: 'Tài khoản' }).waitFor();
    await page.getByRole('link', { name: ACCOUNT_NUMBER, exact: true }).click();
    await page.getByRole('heading', { name: 'tháng 12 năm 2023' }).waitFor();
    const summary = plain(await page.locator('dl.summary').innerText());
    expect(summary).toContain('Số dư đầu kỳ');
    expect(summary).toContain('15.000.000 ₫');
    expect(plain(await page.locator('tr.break-row').innerText())).toContain('Đứt chuỗi: thiếu 1.200.000 ₫');
    expect(await page.locator(`tr[data-transaction-id="${dec07.id}"] td`).first().innerText()).toBe('28/12/2023 13:20');

    expect(await page.evaluate(() => Object.keys(sessionStorage))).toEqual(['balance-ledger.key']);
    expect(await page.evaluate(() => JSON.stringify(localStorage))).not.toContain(keys.accountant);
    await page.getByRole('button', { name: 'Đăng xuất' }).click();
    await page.getByRole('heading', { name: 'Đăng nhập' }).waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    await page.getByLabel('Ngôn ngữ').selectOption('en');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('passes axe (WCAG 2.1 AA) and fits a phone: 375 px wide, nothing wider than the screen', async () => {
    const { page, errors } = await openTab();
    await signIn(page, keys.auditor);
    await page.locator('table.accounts tbody tr').first().waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await openStatement(page);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('button', { name: `Event & payload of transaction ${dec02.id}` }).click();
    await page.getByRole('dialog').locator('pre.raw-body').waitFor();
    expect(await axeViolations(page)).toEqual([]);
    await page.keyboard.press('Escape');

    await page.setViewportSize({ width: 375, height: 740 });
    await page.goto(`${base}/#/accounts`);
    await page.locator('table.accounts tbody tr').first().waitFor();
    const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(await overflow()).toBe(0);
    expect(await axeViolations(page)).toEqual([]);
    await openStatement(page);
    expect(await overflow()).toBe(0);
    if (process.env.CONSOLE_SCREENSHOT) await page.screenshot({ path: join(tmpdir(), 'console-statement-phone.png'), fullPage: true });
    expect(await page.getByRole('button', { name: 'CSV' }).isVisible()).toBe(true);
    expect(await axeViolations(page)).toEqual([]);
    await page.getByRole('link', { name: 'Breaks' }).click();
    await page.locator('tbody tr').first().waitFor();
    expect(await overflow()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });
});
