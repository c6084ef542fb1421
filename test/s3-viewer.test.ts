/**
 * The viewer page stays responsive on a 512³ dataset on S3 (the test RGW): only the slice on
 * screen is read, a slider dragged across planes cancels the reads it overtakes, and the page
 * ends on the plane the slider ends on. (A file of the s3 backend: run_tests.sh leaves it out
 * when s3 is not among the backends tested.)
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { serve, type DosnaServer } from '../src/serve/server.js';
import { paint, valueRange } from '../src/view/render.js';
import { canvasRgba, launchChromium, screenshotPath } from './support/browser.js';
import { closeConnection, openConnection } from './support/matrix.js';

const N = 512;
const PLANE_BYTES = N * N * 4;

describe('the viewer page on a 512³ dataset on s3', () => {
  let browser: Browser;
  let con: dn.Connection;
  let server: DosnaServer;
  let ds: dn.Dataset;
  const log: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    con = await openConnection({ backend: 's3', engine: 'cpu', cache: 'on', label: 's3' });
    // 512 MiB as an array; only the chunks of planes 96-127 are stored (the rest read as the fill value).
    ds = await con.createDataset('big', { shape: [N, N, N], dtype: 'float32', chunkSize: [32, 128, 128], fillValue: 0 });
    const planes = new Float32Array(32 * N * N);
    for (let i = 0; i < planes.length; i++) planes[i] = Math.sin(i / 5000) * (1 + Math.floor(i / (N * N)));
    await ds.set([dn.s(96, 128)], dn.ndarray(planes, [32, N, N]));
    await ds.flush();
    server = await serve(con, { log: (line) => log.push(line) });
  }, 900_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await closeConnection(con);
  });

  it('reads one plane per slider position, cancels overtaken reads, and ends on the last position', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await page.goto(`${server.url}/`);
      await page.getByRole('button', { name: 'big', exact: true }).click();
      await page.waitForSelector('#viewer[data-selection="256,:,:"]');
      const slider = page.getByRole('slider', { name: 'index of axis 0' });
      const before = log.length;
      // Dragged across ten planes without waiting for any of them.
      for (let z = 100; z <= 118; z += 2) await slider.fill(String(z));
      await page.waitForSelector('#viewer[data-selection="118,:,:"]', { timeout: 60_000 });
      const pixels = (await canvasRgba(page, 'image')).data;
      const plane = (await ds.get([118])).data as Float32Array;
      const expected = new Uint8ClampedArray(N * N * 4);
      paint(plane, valueRange(plane)!, 'viridis', expected);
      expect(pixels.length).toBe(N * N * 4);
      expect(pixels.every((v, i) => v === expected[i])).toBe(true);
      await page.screenshot({ path: screenshotPath('page-s3-512.png') });
      // One line per request: one plane each (whole, or cut off when the page moved on), or
      // cancelled before it was read. The volume never travels.
      const requests = log.slice(before).filter((l) => l.startsWith('GET /data'));
      expect(requests.length).toBeGreaterThanOrEqual(1);
      expect(requests.length, requests.join("\n")).toBeLessThanOrEqual(10);
      for (const line of requests) expect(line).toMatch(new RegExp(`( 200 ${PLANE_BYTES} B | cancelled: the client closed the connection )`));
      expect(requests.map((l) => /selection=(\d+)/.exec(l)![1])).toEqual([...new Set(requests.map((l) => /selection=(\d+)/.exec(l)![1]))]);
      expect(requests.at(-1)).toMatch(new RegExp(`selection=118%2C%3A%2C%3A 200 ${PLANE_BYTES} B`));
    } finally {
      await page.close();
    }
  });
});
