/**
 * The viewer page's files, made once when a server starts and kept in memory: index.html and
 * style.css as written, and app.js bundled by esbuild from the page's TypeScript (page/app.ts
 * and the rendering code it shares with `dosna view`). Bundling from the sources works the
 * same in a checkout and in an installed package, which ships `src`.
 */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** One file of the page. */
export interface Asset {
  body: Buffer | string;
  contentType: string;
}

// From src/serve/ (a checkout, under tsx) and from dist/serve/ (a package) alike: ../../src/serve/page.
const PAGE = new URL('../../src/serve/page/', import.meta.url);

let built: Promise<Map<string, Asset>> | undefined;

/** The page's files by URL path (`/`, `/app.js`, `/style.css`). */
export function pageAssets(): Promise<Map<string, Asset>> {
  built ??= build().catch((error: unknown) => {
    built = undefined;
    throw error;
  });
  return built;
}

async function build(): Promise<Map<string, Asset>> {
  const { build: bundle } = await import('esbuild');
  const result = await bundle({
    entryPoints: [fileURLToPath(new URL('app.ts', PAGE))],
    bundle: true, write: false, format: 'esm', target: 'es2022', minify: true, sourcemap: false,
    platform: 'browser', logLevel: 'silent',
  });
  return new Map<string, Asset>([
    ['/', { body: await readFile(new URL('index.html', PAGE), 'utf8'), contentType: 'text/html; charset=utf-8' }],
    ['/style.css', { body: await readFile(new URL('style.css', PAGE), 'utf8'), contentType: 'text/css; charset=utf-8' }],
    ['/app.js', { body: Buffer.from(result.outputFiles[0].contents), contentType: 'text/javascript; charset=utf-8' }],
  ]);
}
