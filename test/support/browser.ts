/**
 * A real browser for the page tests: Debian's chromium (installed by the project's script when
 * missing), driven by playwright-core, which never downloads a browser of its own. Screenshots
 * go to .artifacts/screenshots/ in the checkout (ignored by git), to be looked at after a run.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ensureDebianPackages } from './python.js';

export const CHROMIUM = '/usr/bin/chromium';
export const SCREENSHOTS = resolve(import.meta.dirname, '../../.artifacts/screenshots');

/**
 * Launches headless chromium. The flags keep it from reaching for Google's services, which a
 * closed network refuses (many connections at a time), and from needing a sandbox as root.
 */
export async function launchChromium(): Promise<Browser> {
  ensureDebianPackages('chromium', 'fonts-dejavu-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
}

/** Where a test's screenshot goes (the folder is made). */
export function screenshotPath(name: string): string {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return join(SCREENSHOTS, name);
}

/** A canvas's size and RGBA bytes, read in the page (given as source: the tests are typed for Node, not the DOM). */
export async function canvasRgba(page: Page, id: string): Promise<{ width: number; height: number; data: number[] }> {
  return page.evaluate(`(() => {
    const canvas = document.getElementById(${JSON.stringify(id)});
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, data: Array.from(data) };
  })()`);
}
