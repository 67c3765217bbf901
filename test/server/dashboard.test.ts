/**
 * The dashboard in a real headless Chromium, against the service over a real guard and simulator:
 * servers and stats render, a workflow submitted through the form completes in the live list, its
 * detail shows the recovery history and the output image, the buttons act, and the page works
 * with an API key. A screenshot of the detail view is written to the OS temp dir.
 */
import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tinyWorkflow } from './helpers.js';
import { startServiceRig, type ServiceRig } from './rig.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const UI_TIMEOUT = 30_000;

let browser: Browser;
const pages: Page[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (see .ci/run)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  for (const p of pages.splice(0)) await p.close();
});

/** A page that fails the test on any console error or page exception. */
async function openPage(url: string): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  pages.push(page);
  page.setDefaultTimeout(UI_TIMEOUT);
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  return { page, problems };
}

const invalid = {
  '1': { class_type: 'EmptyImage', inputs: { width: 0, height: 64, batch_size: 1, color: 0 } },
  '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bad' } },
};

describe('the dashboard', () => {
  let rig: ServiceRig;
  let liftOom = false;
  beforeAll(async () => {
    rig = await startServiceRig([{ stepMs: 2, nodeGate: () => void (liftOom && rig.sims[0]!.getFaults() !== '' && rig.sims[0]!.setFaults('')) }], { app: { dashboard: true } });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('has a label for every form control', async () => {
    const { page, problems } = await openPage(rig.url);
    // Page code as strings: the test project is type-checked without the DOM library.
    const unlabelled = await page.evaluate(
      "[...document.querySelectorAll('input, select, textarea')].filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).map((el) => el.id)",
    );
    expect(unlabelled).toEqual([]);
    expect(await page.locator('h1').textContent()).toBe('comfyguard');
    expect(problems).toEqual([]);
  });

  it('shows the servers and the statistics', async () => {
    const { page, problems } = await openPage(rig.url);
    const row = page.locator('#servers tbody tr', { hasText: 'sim-0' });
    await row.waitFor();
    await expect.poll(() => row.textContent(), { timeout: UI_TIMEOUT }).toContain('healthy');
    expect(await row.textContent()).toContain('closed');
    expect(await row.textContent()).toMatch(/GB/);
    await expect.poll(() => page.locator('#stats').textContent(), { timeout: UI_TIMEOUT }).toContain('Recovery rate');
    expect(problems).toEqual([]);
  });

  it('submits a workflow through the form, sees it complete in the list, and opens its detail with the output and recovery history', async () => {
    const { page, problems } = await openPage(rig.url);
    // The first prompt runs out of memory once, so the detail has a recovery step to show.
    rig.sims[0]!.setFaults('oom=1');
    liftOom = true;
    await page.fill('#workflow', JSON.stringify(tinyWorkflow('dash')));
    await page.fill('#params', '{"width": 96, "height": 80}');
    await page.click('#submit-form button[type=submit]');
    const link = page.locator('#submit-result a');
    await link.waitFor();
    expect(await page.locator('#submit-result').textContent()).toMatch(/Submitted job/);
    const shortId = (await link.textContent())!;

    const row = page.locator(`#job-list tbody tr[data-status="completed"]`, { hasText: shortId });
    await row.waitFor({ timeout: UI_TIMEOUT });
    expect(await row.textContent()).toContain('sim-0');
    expect(await row.locator('progress').getAttribute('value')).toBe('100');

    await row.locator('a.job-link').click();
    const detail = page.locator('#detail');
    await detail.waitFor({ state: 'visible' });
    await expect.poll(() => page.locator('#detail-status').textContent(), { timeout: UI_TIMEOUT }).toBe('completed');
    expect(await page.evaluate('document.activeElement?.id')).toBe('detail-h');
    const step = page.locator('#recovery tbody tr').first();
    expect(await step.textContent()).toContain('COMFYUI_OOM');
    expect(await step.textContent()).toContain('succeeded');
    expect(await page.locator('#attempts tbody tr').count()).toBe(2);
    await expect.poll(() => page.evaluate("document.querySelector('#outputs img')?.naturalWidth ?? 0"), { timeout: UI_TIMEOUT }).toBeGreaterThan(0);
    expect(await page.locator('#cancel-job').isDisabled()).toBe(true);

    const dir = mkdtempSync(join(tmpdir(), 'comfyguard-dashboard-'));
    const shot = join(dir, 'job-detail.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    expect(problems).toEqual([]);
  });

  it('shows a failure with its code and hint, and retries it with the force button', async () => {
    const { page } = await openPage(rig.url);
    await page.fill('#workflow', JSON.stringify(invalid));
    await page.click('#submit-form button[type=submit]');
    const link = page.locator('#submit-result a');
    await link.waitFor();
    await link.click();
    await expect.poll(() => page.locator('#detail-status').textContent(), { timeout: UI_TIMEOUT }).toBe('failed');
    expect(await page.locator('#detail-error').textContent()).toContain('COMFYUI_INVALID_PARAMETERS');
    expect(await page.locator('#retry-job').isDisabled()).toBe(false);
    await page.click('#retry-job');
    await expect.poll(() => page.locator('#notice').textContent(), { timeout: UI_TIMEOUT }).toMatch(/retrying will not fix/);
    await page.click('#force-retry-job');
    await expect.poll(() => page.locator('#attempts tbody tr').count(), { timeout: UI_TIMEOUT }).toBe(2);
    await expect.poll(() => page.locator('#detail-status').textContent(), { timeout: UI_TIMEOUT }).toBe('failed');
  });

  it('refuses a UI-format workflow in the form with the service\'s message', async () => {
    const { page } = await openPage(rig.url);
    await page.fill('#workflow', JSON.stringify({ nodes: [], links: [], version: 0.4 }));
    await page.click('#submit-form button[type=submit]');
    await expect.poll(() => page.locator('#submit-result').textContent(), { timeout: UI_TIMEOUT }).toMatch(/API Format/);
  });
});

describe('the dashboard with an API key and held jobs', () => {
  let rig: ServiceRig;
  let release: () => void = () => {};
  beforeAll(async () => {
    const gate = new Promise<void>((r) => (release = r));
    rig = await startServiceRig([{ nodeGate: () => gate }], { app: { dashboard: true, apiKey: 'dash-key' } });
  });
  afterAll(async () => {
    release();
    await rig?.close();
  });

  it('asks for the key, keeps it for the tab, and then cancels and emergency-stops jobs', async () => {
    const { page } = await openPage(rig.url);
    await expect.poll(() => page.locator('#notice').textContent(), { timeout: UI_TIMEOUT }).toMatch(/needs an API key/);
    await page.fill('#api-key', 'dash-key');
    await page.click('#key-form button');
    await page.locator('#servers tbody tr', { hasText: 'sim-0' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('comfyguard.apiKey')")).toBe('dash-key');

    await page.fill('#workflow', JSON.stringify(tinyWorkflow('held')));
    await page.click('#submit-form button[type=submit]');
    await page.locator('#submit-result a').click();
    await expect.poll(() => page.locator('#detail-status').textContent(), { timeout: UI_TIMEOUT }).toBe('running');
    await page.click('#cancel-job');
    await expect.poll(() => page.locator('#detail-status').textContent(), { timeout: UI_TIMEOUT }).toBe('cancelled');

    await page.fill('#workflow', JSON.stringify(tinyWorkflow('held2')));
    await page.click('#submit-form button[type=submit]');
    await page.locator('#job-list tbody tr[data-status="running"]').waitFor();
    page.once('dialog', (d) => void d.accept());
    await page.click('#emergency-stop');
    await expect.poll(() => page.locator('#notice').textContent(), { timeout: UI_TIMEOUT }).toMatch(/Emergency stop: 1 jobs cancelled/);
  });
});
