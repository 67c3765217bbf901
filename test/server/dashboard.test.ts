/**
 * The dashboard in a real headless Chromium (Debian's /usr/bin/chromium), against the service over a
 * real guard and simulator: deep links and back to the list as it was, pagination through the
 * store, search and filters, live progress with an ETA, the timeline of a recovered job with its
 * changed-result badge, retry refused on a permanent error and force retry with its result, bulk
 * retry, pause/resume, a 400 px layout without horizontal scrolling, dark mode, and the API key.
 * Screenshots go to the OS temp dir, or to $COMFYGUARD_SCREENSHOTS (docs/screenshots for the README).
 */
import { existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ApiWorkflow } from '../../src/comfy/types.js';
import { sd15Txt2img } from '../fixtures/workflows/index.js';
import { postJson, tinyWorkflow } from './helpers.js';
import { startServiceRig, type ServiceRig } from './rig.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const UI_TIMEOUT = 30_000;
const SHOTS = process.env.COMFYGUARD_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'comfyguard-dashboard-'));

let browser: Browser;
const pages: Page[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium (see .ci/run)`);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
});

afterEach(async () => {
  for (const p of pages.splice(0)) await p.close();
});

/** A page that records console errors and page exceptions. */
async function openPage(url: string, opts: { width?: number; height?: number; dark?: boolean } = {}): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: opts.width ?? 1280, height: opts.height ?? 1000 }, colorScheme: opts.dark ? 'dark' : 'light' });
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

async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  const file = join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage });
  expect(statSync(file).size).toBeGreaterThan(10_000);
}

/** Submits a job over the API and returns its id. */
async function submit(rig: ServiceRig, workflow: ApiWorkflow, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await postJson(`${rig.url}/api/jobs`, { workflow, ...extra });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

/** Page code as strings: the test project is type-checked without the DOM library. */
const NO_SIDEWAYS_SCROLL = 'document.documentElement.scrollWidth <= document.documentElement.clientWidth';

const invalid: ApiWorkflow = {
  '1': { class_type: 'EmptyImage', inputs: { width: 0, height: 64, batch_size: 1, color: 0 } },
  '2': { class_type: 'SaveImage', inputs: { images: ['1', 0], filename_prefix: 'bad' } },
};

/** SD 1.5 at 512x512 x8: samples in 4 GiB, but only decodes at batch 4 (see sim/memory.ts). */
function batchOf8(): ApiWorkflow {
  const wf = sd15Txt2img();
  wf['5']!.inputs.batch_size = 8;
  wf['9']!.inputs.filename_prefix = 'astronauts';
  return wf;
}

describe('the dashboard', () => {
  let rig: ServiceRig;
  let recoveredId = '';
  let failedId = '';
  beforeAll(async () => {
    rig = await startServiceRig([{ stepMs: 2, vram: '4GiB' }], { app: { dashboard: true } });
    // A job recovery had to change (batch 8 -> 4) and a job ComfyUI refused: the pages below show both.
    recoveredId = await submit(rig, batchOf8(), { options: { recovery: { COMFYUI_OOM: ['reduce_batch'] }, idempotencyKey: 'astronauts-8' } });
    failedId = await submit(rig, invalid);
    await rig.guard.wait(recoveredId);
    await rig.guard.wait(failedId);
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('has a label for every form control', async () => {
    const { page, problems } = await openPage(rig.url);
    await page.locator('#job-list tbody tr[data-job]').first().waitFor();
    const unlabelled = await page.evaluate(
      "[...document.querySelectorAll('input, select, textarea')].filter((el) => !el.labels?.length && !el.getAttribute('aria-label')).map((el) => el.id)",
    );
    expect(unlabelled).toEqual([]);
    expect(await page.locator('h1').textContent()).toBe('comfyguard');
    expect(problems).toEqual([]);
  });

  it('opens a job from a deep link, and goes back to the list as it was (filter, row)', async () => {
    const { page, problems } = await openPage(`${rig.url}/#/jobs/${recoveredId}`);
    await expect.poll(() => page.locator('#job-id').textContent()).toBe(recoveredId);
    expect(await page.locator('#view-jobs').isHidden()).toBe(true);

    await page.goto(`${rig.url}/#/jobs?status=completed`);
    const row = page.locator(`#job-list tr[data-job="${recoveredId}"]`);
    await row.waitFor();
    expect(await page.locator('#job-list tr[data-job]').count()).toBe(1);
    await row.locator('td[data-label="Created"]').click(); // anywhere on the row
    await expect.poll(() => page.evaluate('location.hash')).toBe(`#/jobs/${recoveredId}`);
    await page.locator('#job-id').waitFor();
    expect(await page.evaluate('document.activeElement?.id')).toBe('job-h');
    await page.click('#back-to-list');
    await expect.poll(() => page.evaluate('location.hash')).toBe('#/jobs?status=completed');
    await row.waitFor();
    expect(await page.locator('[data-status-tab="completed"]').getAttribute('aria-current')).toBe('true');
    expect(problems).toEqual([]);
  });

  it("shows a recovered job's timeline with the exact change, and flags the changed result", async () => {
    const { page, problems } = await openPage(`${rig.url}/#/jobs/${recoveredId}`);
    await expect.poll(() => page.locator('#view-job h2 .status').textContent()).toBe('completed');
    expect(await page.locator('#view-job h2 .badge.changed').textContent()).toBe('changed: batch 8 → 4');
    const step = page.locator('#timeline li.t-recovery');
    expect(await step.count()).toBe(1);
    expect(await step.textContent()).toContain('COMFYUI_OOM → reduce batch');
    expect(await step.textContent()).toContain('EmptyLatentImage #5 batch_size: 8 → 4');
    expect(await step.textContent()).toContain('succeeded');
    expect(await page.locator('#timeline li.t-attempt').count()).toBe(2);
    expect(await page.locator('#job-what').textContent()).toContain('v1-5-pruned-emaonly.ckpt');
    expect(await page.locator('#job-what').textContent()).toContain('512 × 512');
    expect(await page.locator('#job-times').textContent()).toMatch(/Queue wait/);
    expect(await page.locator('#job-times').textContent()).toMatch(/GPU time.+for the result, .+ lost in 1 failed attempt/);
    expect(await page.locator('#job-times time').first().getAttribute('title')).toMatch(/\d{4}/);
    // Four images, each viewable full size.
    await expect.poll(() => page.evaluate("[...document.querySelectorAll('#outputs img')].filter((i) => i.naturalWidth > 0).length")).toBe(4);
    await page.locator('#outputs figure button').first().click();
    await expect.poll(() => page.evaluate("document.getElementById('viewer').open")).toBe(true);
    await page.keyboard.press('Escape');
    expect(await page.locator('#outputs a.download').first().getAttribute('download')).toMatch(/astronauts/);
    // The workflow as attempt 2 ran it.
    await page.click('details.workflow summary');
    expect(await page.locator('#workflow-json').textContent()).toContain('"batch_size": 4');
    expect(await page.locator('#retry-job').isDisabled()).toBe(true);
    await shot(page, 'recovered-job');
    // The list row carries the badge too.
    await page.goto(`${rig.url}/#/jobs`);
    await expect.poll(() => page.locator(`#job-list tr[data-job="${recoveredId}"] .badge.changed`).textContent()).toBe('changed: batch 8 → 4');
    expect(problems).toEqual([]);
  });

  it('keeps Retry off for a permanent error, explains Force retry, and shows its result next to it', async () => {
    const { page, problems } = await openPage(`${rig.url}/#/jobs/${failedId}`);
    await expect.poll(() => page.locator('#view-job h2 .status').textContent()).toBe('failed');
    const card = await page.locator('#job-error').textContent();
    expect(card).toContain('COMFYUI_INVALID_PARAMETERS');
    expect(card).toContain('not retryable');
    expect(await page.locator('#retry-job').isDisabled()).toBe(true);
    expect(await page.locator('#force-explain').textContent()).toMatch(/Force retry runs it again anyway/);
    await shot(page, 'failed-job');
    await page.click('#force-retry-job');
    await expect.poll(() => page.locator('#action-result').textContent()).toBe('Queued again (forced).');
    await expect.poll(() => page.locator('#timeline li.t-attempt').count()).toBe(2);
    await expect.poll(() => page.locator('#view-job h2 .status').textContent()).toBe('failed');
    // The result stays next to the button through the live updates.
    expect(await page.locator('#action-result').textContent()).toBe('Queued again (forced).');
    expect(problems).toEqual([]);
  });

  it('searches by label and prompt text, and filters by status, error code and server', async () => {
    const { page, problems } = await openPage(rig.url);
    await page.locator('#job-list tbody tr[data-job]').first().waitFor();
    await page.fill('#search', 'astronauts');
    await page.press('#search', 'Enter');
    await expect.poll(() => page.locator('#job-list tbody tr[data-job]').count()).toBe(1);
    await page.fill('#search', 'purple galaxy bottle');
    await page.press('#search', 'Enter');
    await expect.poll(() => page.locator('#job-list tbody tr[data-job]').count()).toBe(1);
    await page.fill('#search', '');
    await page.fill('#code-filter', 'COMFYUI_INVALID_PARAMETERS');
    await page.press('#code-filter', 'Enter');
    await expect.poll(() => page.locator('#job-list tbody tr[data-job]').getAttribute('data-job')).toBe(failedId);
    await page.fill('#code-filter', '');
    await page.press('#code-filter', 'Enter');
    await expect.poll(() => page.evaluate('location.hash')).toBe('#/jobs');
    await page.click('[data-status-tab="failed"]');
    await expect.poll(() => page.evaluate("[...document.querySelectorAll('#job-list tbody tr[data-job]')].every((r) => r.dataset.status === 'failed')")).toBe(true);
    expect(Number(await page.locator('[data-status-tab="failed"] .count').textContent())).toBeGreaterThanOrEqual(1);
    await page.click('[data-status-tab="all"]');
    await page.selectOption('#server-filter', 'sim-0');
    await expect.poll(() => page.evaluate('location.hash')).toBe('#/jobs?server=sim-0');
    await expect.poll(() => page.locator('#job-list tbody tr[data-job]').count()).toBeGreaterThanOrEqual(2);
    expect(problems).toEqual([]);
  });

  it('retries every retryable failure in bulk, after saying how many', async () => {
    rig.sims[0]!.setFaults('oom=1');
    const ids = [await submit(rig, tinyWorkflow('bulk-a'), { options: { maxRetries: 0 } }), await submit(rig, tinyWorkflow('bulk-b'), { options: { maxRetries: 0 } })];
    for (const id of ids) expect((await rig.guard.wait(id)).error?.retryable).toBe(true);
    rig.sims[0]!.setFaults('');
    const { page, problems } = await openPage(rig.url);
    let asked = '';
    page.once('dialog', (d) => {
      asked = d.message();
      void d.accept();
    });
    await page.click('#bulk-retry');
    await expect.poll(() => page.locator('#bulk-retry-result').textContent()).toMatch(/^Retried 2 of 2\.$/);
    expect(asked).toMatch(/Retry 2 failed jobs/);
    for (const id of ids) expect((await rig.guard.wait(id)).status).toBe('completed');
    expect(problems).toEqual([]);
  });

  it('shows the figures as charts over time, and the servers with GiB, breaker and history', async () => {
    const { page, problems } = await openPage(`${rig.url}/#/charts`);
    await expect.poll(() => page.locator('svg.chart').count()).toBeGreaterThanOrEqual(5);
    expect(await page.locator('#stats').textContent()).toContain('Recovered jobs');
    expect(await page.locator('#charts').textContent()).toContain('reduce batch');
    expect(await page.locator('#charts').textContent()).toContain('COMFYUI_OOM');
    // Goodput: the share of GPU time that went into results, per server and lost by code (the OOM'd attempt).
    expect(await page.locator('#goodput dd').textContent()).toMatch(/^\d+ %$/);
    // At least the OOM'd attempt and the refused workflow (tests before this one may add more).
    expect(Number(/into (\d+) failed attempts/.exec((await page.locator('#goodput').textContent()) ?? '')?.[1])).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#goodput-servers svg.chart').getAttribute('aria-label')).toMatch(/sim-0 [\d.]+ s produced results, [\d.]+ s lost to failures/);
    expect(await page.locator('#goodput-codes').textContent()).toContain('COMFYUI_OOM');
    await shot(page, 'charts');

    await page.click('[data-nav="servers"]');
    const card = page.locator('[data-server="sim-0"]');
    await card.waitFor();
    expect(await card.textContent()).toContain('/ 4.0 GiB');
    expect(await card.textContent()).toContain('closed: jobs are sent');
    expect(await page.locator('#degradation').textContent()).toMatch(/Degradation: full/);
    await card.locator('button[data-drain]').click();
    await expect.poll(() => card.locator('.result').textContent()).toMatch(/Drained/);
    await expect.poll(() => rig.guard.servers().then((s) => s[0]!.drained)).toBe(true);
    await page.locator('[data-server="sim-0"] button[data-drain]', { hasText: 'Undrain' }).click();
    await expect.poll(() => rig.guard.servers().then((s) => s[0]!.drained)).toBe(false);
    await page.goto(`${rig.url}/#/jobs`);
    await page.locator(`#job-list tr[data-job="${recoveredId}"]`).waitFor();
    await shot(page, 'list', false);
    expect(problems).toEqual([]);
  });

  it('fits a 400 px screen without sideways scrolling, on every view', async () => {
    const { page, problems } = await openPage(`${rig.url}/#/jobs`, { width: 400, height: 800 });
    await page.locator('#job-list tbody tr[data-job]').first().waitFor();
    expect(await page.evaluate(NO_SIDEWAYS_SCROLL)).toBe(true);
    const views: Array<[string, string]> = [
      [`#/jobs/${recoveredId}`, '#outputs img'],
      [`#/jobs/${failedId}`, '#job-error'],
      ['#/servers', '[data-server]'],
      ['#/charts', 'svg.chart'],
      ['#/submit', '#workflow'],
    ];
    for (const [hash, content] of views) {
      await page.goto(`${rig.url}/${hash}`);
      await page.locator(content).first().waitFor();
      expect([hash, await page.evaluate(NO_SIDEWAYS_SCROLL)]).toEqual([hash, true]);
    }
    expect(problems).toEqual([]);
  });

  it('follows the system dark mode', async () => {
    const { page } = await openPage(rig.url, { dark: true });
    const bg = await page.evaluate('getComputedStyle(document.body).backgroundColor');
    expect(bg).toBe('rgb(17, 20, 24)');
    const light = await openPage(rig.url);
    expect(await light.page.evaluate('getComputedStyle(document.body).backgroundColor')).toBe('rgb(246, 247, 249)');
  });

  it("refuses a UI-format workflow in the form with the service's message", async () => {
    const { page } = await openPage(`${rig.url}/#/submit`);
    await page.fill('#workflow', JSON.stringify({ nodes: [], links: [], version: 0.4 }));
    await page.click('#submit-form button[type=submit]');
    await expect.poll(() => page.locator('#submit-result').textContent()).toMatch(/API Format/);
  });

  it('names the missing model the workflow asked for, with the hint', async () => {
    const wf = sd15Txt2img();
    wf['4']!.inputs.ckpt_name = 'v1-5-pruned.ckpt';
    // No fallback model: the job fails on the missing model instead of switching.
    const id = await submit(rig, wf, { options: { recovery: { COMFYUI_MODEL_MISSING: ['abort'], COMFYUI_INVALID_PARAMETERS: ['abort'] } } });
    await rig.guard.wait(id);
    const { page, problems } = await openPage(`${rig.url}/#/jobs/${id}`);
    const card = page.locator('#job-error pre');
    await card.waitFor();
    const text = (await card.textContent())!;
    expect(text).toContain('COMFYUI_MODEL_MISSING');
    expect(text).toContain('model asked for: CheckpointLoaderSimple #4 ckpt_name: v1-5-pruned.ckpt');
    expect(await page.locator('#job-error .hint').textContent()).not.toBe('');
    expect(problems).toEqual([]);
  });
});

describe('the dashboard over a paused pool', () => {
  let rig: ServiceRig;
  beforeAll(async () => {
    rig = await startServiceRig([{ stepMs: 1 }], { app: { dashboard: true } });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it('pauses the pool, pages through the waiting jobs with load more, and resumes them', async () => {
    const { page, problems } = await openPage(rig.url);
    await expect.poll(() => page.locator('#pool-state').textContent()).toBe('running');
    await page.click('#pause-toggle');
    await expect.poll(() => page.locator('#pool-state').textContent()).toMatch(/paused/);
    expect(rig.guard.isPaused()).toBe(true);
    const ids: string[] = [];
    for (let i = 0; i < 57; i++) ids.push(await submit(rig, tinyWorkflow(`page-${i}`)));
    // The list follows the stream: the new jobs appear without a reload, newest first.
    await expect.poll(() => page.locator('[data-status-tab="queued"] .count').textContent()).toBe('57');
    await page.reload();
    await expect.poll(() => page.locator('#job-list tbody tr[data-job]').count()).toBe(50);
    expect(await page.locator('#job-list tbody tr[data-job]').first().getAttribute('data-job')).toBe(ids[56]);
    expect(await page.locator('#job-list tbody tr[data-job]').first().textContent()).toContain('waiting for a server');
    await page.click('#load-more');
    await expect.poll(() => page.locator('#job-list tbody tr[data-job]').count()).toBe(57);
    expect(await page.locator('#load-more').isHidden()).toBe(true);
    await page.click('#pause-toggle');
    await expect.poll(() => page.locator('#pool-state').textContent()).toBe('running');
    await expect.poll(() => page.locator('[data-status-tab="completed"] .count').textContent(), { timeout: 60_000 }).toBe('57');
    expect(problems).toEqual([]);
  });
});

describe('the dashboard following a running job', () => {
  let rig: ServiceRig;
  beforeAll(async () => {
    rig = await startServiceRig([{ stepMs: 40 }], { app: { dashboard: true } });
  });
  afterAll(async () => {
    await rig?.close();
  });

  it("shows a live job's node, step, percentage and ETA from the event stream", async () => {
    const wf = sd15Txt2img();
    wf['3']!.inputs.steps = 80;
    const { page, problems } = await openPage(rig.url);
    await page.locator('#live.on').waitFor();
    const id = await submit(rig, wf);
    await page.goto(`${rig.url}/#/jobs/${id}`);
    await expect.poll(() => page.locator('#job-node').textContent()).toMatch(/Running KSampler \(#3\), step \d+ of 80/);
    await expect.poll(() => page.locator('#job-eta').textContent()).toMatch(/^about .+ left \(from the measured step rate\)$/);
    expect(await page.locator('#job-progress-text').textContent()).toMatch(/\d+ % · step \d+\/80 · ~.+ left/);
    await expect.poll(() => page.locator('#view-job h2 .status').textContent(), { timeout: 60_000 }).toBe('completed');
    // An ended job has no live box (and so no ETA).
    expect(await page.locator('#job-eta').count()).toBe(0);
    expect(problems).toEqual([]);
  });
});

describe('the dashboard with an API key and held jobs', () => {
  let rig: ServiceRig;
  let release: () => void = () => {};
  beforeAll(async () => {
    const gate = new Promise<void>((r) => (release = r));
    rig = await startServiceRig([{ nodeGate: () => gate }], { app: { dashboard: true, apiKey: 'dash-key-0123456789' } });
  });
  afterAll(async () => {
    release();
    await rig?.close();
  });

  it('asks for the key, keeps it for the tab, cancels a job, and an emergency stop leaves the pool paused', async () => {
    const { page } = await openPage(rig.url);
    await expect.poll(() => page.locator('#notice').textContent()).toMatch(/needs an API key/);
    await page.click('details.key summary');
    await page.fill('#api-key', 'dash-key-0123456789');
    await page.click('#key-form button');
    await page.reload();
    await page.locator('#live.on').waitFor();
    expect(await page.evaluate("sessionStorage.getItem('comfyguard.apiKey')")).toBe('dash-key-0123456789');

    const auth = { authorization: 'Bearer dash-key-0123456789' };
    // A job that waits in the paused pool, cancelled from its page.
    rig.guard.pause();
    const first = ((await (await postJson(`${rig.url}/api/jobs`, { workflow: tinyWorkflow('held') }, auth)).json()) as { id: string }).id;
    await page.goto(`${rig.url}/#/jobs/${first}`);
    await expect.poll(() => page.locator('#view-job h2 .status').textContent()).toBe('queued');
    await page.click('#cancel-job');
    await expect.poll(() => page.locator('#view-job h2 .status').textContent()).toBe('cancelled');
    await expect.poll(() => page.locator('#action-result').textContent()).toBe('Cancelled.');
    rig.guard.resume();

    const running = ((await (await postJson(`${rig.url}/api/jobs`, { workflow: tinyWorkflow('held2') }, auth)).json()) as { id: string }).id;
    await page.goto(`${rig.url}/#/jobs?status=running`);
    await page.locator('#job-list tbody tr[data-status="running"]').waitFor();
    page.once('dialog', (d) => void d.accept());
    await page.click('#emergency-stop');
    // A held node ignores ComfyUI's interrupt until its gate opens (as a node stuck in a CUDA call would).
    await expect.poll(() => rig.guard.isPaused()).toBe(true);
    release();
    await expect.poll(() => rig.guard.get(running).then((j) => j?.status)).toBe('cancelled');
    await expect.poll(() => page.locator('#notice').textContent()).toMatch(/Emergency stop: 1 jobs cancelled/);
    await expect.poll(() => page.locator('#pool-state').textContent()).toMatch(/paused/);
    expect(rig.guard.isPaused()).toBe(true);
    await page.click('#pause-toggle');
    await expect.poll(() => page.locator('#pool-state').textContent()).toBe('running');
    expect(rig.guard.isPaused()).toBe(false);
  });
});
