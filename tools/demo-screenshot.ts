/**
 * The README's screenshot of the browser demo (docs/demo.png), as a new user sees it after `npm start`:
 * the built-in default run (synthetic data, `stfpm`, 64 px, evaluated, so with thresholds) loaded in the
 * page by URL, and good and defect test parts of both categories inspected, with their verdicts.
 * Needs Chromium (apt-get install chromium, or CHROMIUM_PATH).
 *
 *   npx tsx tools/demo-screenshot.ts [--out docs/demo.png]
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { build } from 'vite';
import { shippedTeacher } from '../test/shared.js';
import { dcam, openBrowser, repo, serveStatic } from '../test/e2e/browser.js';

const { values: a } = parseArgs({ options: { out: { type: 'string', default: join(repo, 'docs/demo.png') } } });
const tmp = mkdtempSync(join(tmpdir(), 'dcam-screenshot-'));
try {
  await build({ configFile: join(repo, 'demo/vite.config.ts'), logLevel: 'warn' });
  dcam('demo', '--dir', tmp); // what `npm start` does: data, a 120-step stfpm run at 64 px, eval (thresholds)
  const data = join(tmp, 'data');
  const pick = (category: string, kind: string) => {
    const dir = join(data, category, 'test', kind);
    return join(dir, readdirSync(dir).sort()[1]);
  };
  const defectKind = (category: string) => readdirSync(join(data, category, 'test')).filter((d) => d !== 'good').sort()[0];
  const images = ['synth_disc', 'synth_weave'].flatMap((c) => [pick(c, 'good'), pick(c, defectKind(c))]);

  const { server, base } = await serveStatic([['/files/teacher/', join(shippedTeacher, '..')], ['/files/run/', join(tmp, 'run')], ['/', join(repo, 'demo/dist')]]);
  const { browser, page } = await openBrowser();
  try {
    await page.goto(`${base}/?run=/files/run/`);
    await page.waitForFunction(() => {
      const s = document.getElementById('status')!;
      return s.dataset.state === 'error' || (s.dataset.state === 'ready' && s.textContent!.includes('model ready'));
    }, undefined, { timeout: 300_000 });
    const status = await page.textContent('#status');
    if (!status?.includes('model ready')) throw new Error(`the demo did not load the run: ${status}`);
    await page.setInputFiles('#inspect-input', images);
    await page.locator('.result-card').nth(images.length - 1).waitFor({ timeout: 300_000 });
    await page.screenshot({ path: a.out!, fullPage: true });
    console.log(`wrote ${a.out} (${images.length} parts inspected: ${(await page.locator('.result-card').evaluateAll((cards) => cards.map((c) => (c as HTMLElement).dataset.label))).join(', ')})`);
  } finally {
    await browser.close();
    server.close();
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
