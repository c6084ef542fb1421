/**
 * `dosna serve` in a real browser (Debian's chromium through playwright-core): the built-in
 * page picks a dataset, draws the expected pixels for a known pattern, follows a slider, swaps
 * the displayed axes, changes colour map and limits, zooms, tells the value under the cursor,
 * and plots 1-D data; the stock H5Web viewer (@h5web/app's H5GroveProvider, served from another
 * origin) browses the same server. Screenshots land in .artifacts/screenshots/.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as dn from '../src/index.js';
import { serve, type DosnaServer } from '../src/serve/server.js';
import { paint, valueRange, type ColourMap } from '../src/view/render.js';
import { canvasRgba, launchChromium, screenshotPath } from './support/browser.js';

const SHAPE = [6, 16, 20];
/** Every cell different; a few NaN, drawn grey. */
const pattern = () => Float32Array.from({ length: 6 * 16 * 20 }, (_, i) => (i % 97 === 5 ? NaN : Math.sin(i / 9) * 100 + (i % 20)));

/** The #image canvas's size and RGBA bytes. */
const canvasPixels = (page: Page) => canvasRgba(page, 'image');

/** What render.ts paints for these values (rows x cols), with the slice's own range unless given. */
function expectedPixels(values: Float32Array, map: ColourMap, range?: [number, number]): number[] {
  const rgba = new Uint8ClampedArray(values.length * 4);
  paint(values, range ?? valueRange(values)!, map, rgba);
  return Array.from(rgba);
}

describe('the viewer page and H5Web in chromium', () => {
  let browser: Browser;
  let con: dn.Connection;
  let server: DosnaServer;
  let ds: dn.Dataset;
  let directory: string;
  const log: string[] = [];

  beforeAll(async () => {
    browser = await launchChromium();
    // A readable name: the screenshots illustrate docs/serve.md.
    directory = mkdtempSync(join(tmpdir(), 'dosna-browser-'));
    con = await dn.connect('beamtime', { backend: 'hdf5', engine: 'worker-pool', directory, create: true });
    ds = await con.createDataset('scan1/vol', { data: dn.ndarray(pattern(), SHAPE), chunkSize: [2, 8, 8], compression: 'gzip' });
    await ds.attrs.update({ units: 'counts', exposure: 0.25 });
    await con.createDataset('line', { data: dn.ndarray(Float64Array.from({ length: 64 }, (_, i) => (i - 32) ** 2), [64]) });
    server = await serve(con, { log: (line) => log.push(line) });
  }, 900_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await con?.disconnect();
    rmSync(directory, { recursive: true, force: true });
  });

  it('picks a dataset, draws the middle slice, follows a slider, swaps axes, and shows the value under the cursor', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(`${server.url}/`);
      await expect.poll(() => page.locator('#status').textContent()).toBe('ready');
      await page.getByRole('button', { name: 'scan1/' }).click();
      await page.getByRole('button', { name: 'vol', exact: true }).click();
      await page.waitForSelector('#viewer[data-selection="3,:,:"][data-axes="1,2"]');
      expect(await page.locator('#meta').textContent()).toContain('6 × 16 × 20');
      expect(await page.locator('#attrs').textContent()).toContain('"counts"');
      let pixels = await canvasPixels(page);
      expect([pixels.width, pixels.height]).toEqual([20, 16]);
      expect(pixels.data).toEqual(expectedPixels((await ds.get([3])).data as Float32Array, 'viridis'));

      // The slider of axis 0: only that slice is read.
      await page.getByRole('slider', { name: 'index of axis 0' }).fill('5');
      await page.waitForSelector('#viewer[data-selection="5,:,:"]');
      pixels = await canvasPixels(page);
      expect(pixels.data).toEqual(expectedPixels((await ds.get([5])).data as Float32Array, 'viridis'));
      expect(log.filter((l) => l.startsWith('GET /data')).at(-1)).toMatch(/^GET \/data\?.*&selection=5%2C%3A%2C%3A 200 1280 B/);
      await page.screenshot({ path: screenshotPath('page-slice.png') });

      // Rows along axis 2, columns along axis 1: the transpose of the slice.
      await page.selectOption('#row-axis', '2');
      await page.waitForSelector('#viewer[data-selection="5,:,:"][data-axes="2,1"]');
      pixels = await canvasPixels(page);
      expect([pixels.width, pixels.height]).toEqual([16, 20]);
      const slice = (await ds.get([5])).data as Float32Array;
      const transposed = Float32Array.from({ length: 320 }, (_, i) => slice[(i % 16) * 20 + Math.floor(i / 16)]);
      expect(pixels.data).toEqual(expectedPixels(transposed, 'viridis'));

      // Rows along axis 0, columns along axis 1: now axis 2 has the slider.
      await page.selectOption('#row-axis', '0');
      await page.getByRole('slider', { name: 'index of axis 2' }).fill('7');
      await page.waitForSelector('#viewer[data-selection=":,:,7"][data-axes="0,1"]');
      pixels = await canvasPixels(page);
      expect([pixels.width, pixels.height]).toEqual([16, 6]);
      expect(pixels.data).toEqual(expectedPixels((await ds.get([dn.s(), dn.s(), 7])).data as Float32Array, 'viridis'));
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('colour maps, fixed limits, zoom, the cursor readout, and a line plot for 1-D data', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await page.goto(`${server.url}/`);
      await page.getByRole('button', { name: 'scan1/' }).click();
      await page.getByRole('button', { name: 'vol', exact: true }).click();
      await page.waitForSelector('#viewer[data-selection="3,:,:"]');
      const values = (await ds.get([3])).data as Float32Array;
      await page.selectOption('#colour-map', 'gray');
      expect((await canvasPixels(page)).data).toEqual(expectedPixels(values, 'gray'));
      await page.getByLabel('auto limits').uncheck();
      await page.fill('#vmin', '0');
      await page.fill('#vmax', '50');
      expect((await canvasPixels(page)).data).toEqual(expectedPixels(values, 'gray', [0, 50]));
      expect(await page.locator('#bar-max').textContent()).toBe('50');
      // A NaN cell is grey whatever the map: cell 5 of the dataset is [0, 0, 5]; of slice 3, index 97k + 5 - 960.
      const nanAt = values.findIndex(Number.isNaN);
      expect(nanAt).toBeGreaterThanOrEqual(0);
      expect((await canvasPixels(page)).data.slice(4 * nanAt, 4 * nanAt + 4)).toEqual([128, 128, 128, 255]);

      await page.selectOption('#zoom', '8');
      const box = (await page.locator('#image').boundingBox())!;
      expect([box.width, box.height]).toEqual([160, 128]);
      // The centre of cell (row 9, column 13) of the displayed slice.
      await page.mouse.move(box.x + 13 * 8 + 4, box.y + 9 * 8 + 4);
      const expected = values[9 * 20 + 13];
      await expect.poll(() => page.locator('#cursor').textContent()).toBe(`[3, 9, 13] = ${String(Number(expected.toPrecision(4)))}`);

      await page.getByRole('button', { name: 'line', exact: true }).click();
      await page.waitForSelector('#viewer[data-selection=""][data-axes=",0"]');
      expect(await page.locator('#image').isVisible()).toBe(false);
      expect(await page.locator('#plot').isVisible()).toBe(true);
      const plot = (await page.locator('#plot').boundingBox())!;
      // The plot's left and right inner edges are indices 0 and 63; the middle is (31.5): point at 32.
      const drawn = await canvasRgba(page, 'plot');
      const width = drawn.width;
      const inner = (width - 70 - 16) * (plot.width / width);
      await page.mouse.move(plot.x + (70 * plot.width) / width + inner * (32 / 63), plot.y + plot.height / 2);
      await expect.poll(() => page.locator('#cursor').textContent()).toBe('[32] = 0');
      // The line was drawn: the plot has blue pixels.
      let blue = 0;
      for (let i = 0; i < drawn.data.length; i += 4) if (drawn.data[i + 2] > 150 && drawn.data[i] < 100) blue++;
      expect(blue).toBeGreaterThan(200);
      await page.screenshot({ path: screenshotPath('page-line.png') });
    } finally {
      await page.close();
    }
  });

  it('with a token, the page opened with ?token= works through its cookie', async () => {
    const guarded = await serve(con, { token: 'page-token' });
    const page = await browser.newPage();
    try {
      expect((await page.goto(`${guarded.url}/`))!.status()).toBe(401);
      await page.goto(`${guarded.url}/?token=page-token`);
      await expect.poll(() => page.locator('#status').textContent()).toBe('ready');
      await page.getByRole('button', { name: 'line', exact: true }).click();
      await page.waitForSelector('#viewer[data-selection=""]');
    } finally {
      await page.close();
      await guarded.close();
    }
  });

  it('the stock H5Web viewer, from another origin, browses the server as an HDF5 file', async () => {
    // H5Web as a facility deploys it: @h5web/app's App in an H5GroveProvider, bundled by esbuild.
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL('./support/h5web/entry.js', import.meta.url))],
      bundle: true, write: false, format: 'esm', outdir: 'h5web', minify: true, logLevel: 'silent',
      define: { 'process.env.NODE_ENV': '"production"' },
    });
    const files = new Map(bundle.outputFiles.map((f) => [`/${f.path.split('/').pop()}`, f.contents]));
    const html = '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><link rel="stylesheet" href="entry.css">'
      + '<style>html,body,#root{height:100%;margin:0}</style></head><body><div id="root"></div><script type="module" src="entry.js"></script></body></html>';
    const app: Server = createServer((req, res) => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      const body = path === '/' ? html : files.get(path);
      if (body === undefined) return res.writeHead(404).end();
      res.writeHead(200, { 'content-type': path === '/' ? 'text/html' : path.endsWith('.css') ? 'text/css' : 'text/javascript' }).end(body);
    });
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
    const appUrl = `http://127.0.0.1:${(app.address() as { port: number }).port}`;
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      const before = log.length;
      await page.goto(`${appUrl}/?url=${encodeURIComponent(server.url)}&file=${encodeURIComponent(con.name)}`);
      await page.getByRole('treeitem', { name: 'scan1' }).click();
      await page.getByRole('treeitem', { name: 'vol' }).click();
      // H5Web reads the first slice of the volume as typed-array bytes and draws its heatmap.
      await expect.poll(() => log.slice(before).find((l) => l.startsWith('GET /data')), { timeout: 30_000 })
        .toMatch(/^GET \/data\?file=[^&]+&path=%2Fscan1%2Fvol&selection=0%2C%3A%2C%3A&format=bin&dtype=safe 200 1280 B/);
      await page.getByRole('tab', { name: 'Heatmap' }).waitFor();
      await page.waitForTimeout(1000);
      expect(await page.getByText(/error|not found|could not/i).count()).toBe(0);
      await page.screenshot({ path: screenshotPath('h5web-heatmap.png') });
      // Its metadata view shows what /meta says.
      await page.getByText('Inspect', { exact: true }).click();
      await page.getByText('Shape', { exact: true }).waitFor();
      const inspect = await page.locator('body').textContent();
      expect(inspect, inspect!).toMatch(/6 x 16 x 20|6 × 16 × 20/);
      expect(inspect).toContain('Float, 32-bit, little-endian');
      expect(inspect).toContain('counts');
      expect(log.slice(before).filter((l) => !/ 200 /.test(l))).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
      await new Promise((resolve) => app.close(resolve));
    }
  });
});
