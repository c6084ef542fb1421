/**
 * Every code block in the docs runs. For each page, its TypeScript blocks are run in order as
 * one script (each block in its own scope, imports of 'dosna' pointed at the sources) in a
 * fresh folder; a block fenced as ```js file=NAME is written to that folder as NAME first.
 * A `console.log(...)` line ending in `//=> text` claims its output: the run checks that the
 * line runs and prints that text (spacing aside). Shell blocks are checked for what they
 * name: npm scripts and files must exist. Links point inside the repository.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { combos } from './support/matrix.js';

const run = promisify(execFile);
const root = resolve('.');
// A backend's page runs against that backend, so it is part of the run when the backend is
// (run_tests.sh --backend narrows both; the global setup starts what the page needs).
const selected = new Set(combos().map((c) => c.backend));
const pages = ['README.md', ...['docs', 'docs/backends', 'docs/engines'].flatMap((dir) =>
  readdirSync(dir).filter((f) => f.endsWith('.md') && f !== 'benchmarks.md').map((f) => join(dir, f)))]
  .filter((page) => !page.startsWith('docs/backends/') || selected.has(page.slice('docs/backends/'.length, -'.md'.length)));

interface Block { lang: string; info: string; code: string }

function blocks(markdown: string): Block[] {
  const out: Block[] = [];
  // Fences may be indented (inside list items); the block's lines lose that indentation.
  const fence = /^( *)```(\w*)([^\n]*)\n([\s\S]*?)^\1```/gm;
  for (const m of markdown.matchAll(fence)) {
    const indent = m[1].length;
    out.push({ lang: m[2], info: m[3].trim(), code: m[4].split('\n').map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length))).join('\n') });
  }
  return out;
}

/** `console.log(ARGS); //=> CLAIM` on one line: the claim is checked (see `CLAIMS_PRELUDE`). */
const CLAIM = /console\.log\((.*)\);\s*\/\/=>\s*(.*)$/;

/**
 * Checks the claims: each prints as console.log would, and must print its claim (spacing
 * aside); a claim whose line never ran fails the page at exit.
 */
const CLAIMS_PRELUDE = `
import { formatWithOptions as __format } from 'node:util';
const __claims = new Map();
function __claim(id, claim, ...args) {
  const printed = __format({ breakLength: Infinity }, ...args);
  console.log(printed);
  const flat = (text) => text.replace(/\\s+/g, '');
  if (flat(printed) !== flat(claim)) throw new Error(\`the docs claim \${JSON.stringify(claim)} but it prints \${JSON.stringify(printed)}\`);
  __claims.set(id, true);
}
function __declare(id, claim) { if (!__claims.has(id)) __claims.set(id, claim); }
process.on('exit', () => {
  const unrun = [...__claims.values()].filter((v) => v !== true);
  if (unrun.length > 0) { console.error(\`Error: these claimed outputs never printed: \${unrun.join(' | ')}\`); process.exitCode = 1; }
});
`;

/** One script from a page's TypeScript blocks: imports hoisted and deduplicated, each block in its own scope. */
function script(page: Block[]): string {
  const imports = new Set<string>();
  const bodies: string[] = [];
  const declared: string[] = [];
  for (const b of page.filter((x) => (x.lang === 'ts' || x.lang === 'typescript') && !x.info.includes('file='))) {
    const body: string[] = [];
    for (const line of b.code.split('\n')) {
      const claim = CLAIM.exec(line);
      if (/^import .* from ['"][^'"]+['"];?$/.test(line)) imports.add(line.replace(/from ['"]dosna['"]/, `from '${root}/src/index.ts'`));
      else if (claim) {
        const id = declared.length;
        declared.push(`__declare(${id}, ${JSON.stringify(claim[2].trim())});`);
        body.push(line.slice(0, claim.index) + `__claim(${id}, ${JSON.stringify(claim[2].trim())}, ${claim[1]});`);
      } else body.push(line);
    }
    bodies.push(`{\n${body.join('\n')}\n}`);
  }
  return `${[...imports].join('\n')}\n${CLAIMS_PRELUDE}\n${declared.join('\n')}\n${bodies.join('\n')}\nexport {};\n`;
}

/** tsx's loader by absolute URL, since the pages run outside the project folder. */
const tsx = pathToFileURL(join(root, 'node_modules/tsx/dist/loader.mjs')).href;
const packageScripts = Object.keys(JSON.parse(readFileSync('package.json', 'utf8')).scripts as Record<string, string>);

describe.each(pages)('code blocks of %s', (page) => {
  const all = blocks(readFileSync(page, 'utf8'));
  const ts = all.filter((b) => (b.lang === 'ts' || b.lang === 'typescript') && !b.info.includes('file='));

  if (ts.length > 0) it('TypeScript blocks run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dosna-docs-'));
    for (const b of all.filter((x) => x.info.includes('file='))) {
      writeFileSync(join(dir, /file=(\S+)/.exec(b.info)![1]), b.code.replace(/from ['"]dosna['"]/g, `from '${pathToFileURL(join(root, 'src/index.ts')).href}'`));
    }
    writeFileSync(join(dir, 'page.mts'), script(all));
    try {
      const { stderr } = await run(process.execPath, ['--import', tsx, join(dir, 'page.mts')], { cwd: dir, timeout: 120_000, env: { ...process.env, NODE_OPTIONS: '' } })
        .catch((e: { stderr: string; stdout: string }) => { throw new Error(`${page}: ${e.stderr || e.stdout}`); });
      expect(stderr).not.toMatch(/Error/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('shell blocks name npm scripts and files that exist', () => {
    for (const b of all.filter((x) => x.lang === 'sh' || x.lang === 'bash')) {
      for (const m of b.code.matchAll(/npm run ([\w:-]+)/g)) expect(packageScripts, `${page}: npm run ${m[1]}`).toContain(m[1]);
      for (const m of b.code.matchAll(/(?:^|\s)((?:\.\/)?(?:scripts|examples|bench|test)\/[\w./-]+)/g)) expect(existsSync(m[1]), `${page}: ${m[1]}`).toBe(true);
    }
  });
});

// Every page, the generated benchmark results too.
const allPages = ['README.md', ...['docs', 'docs/backends', 'docs/engines'].flatMap((dir) => readdirSync(dir).filter((f) => f.endsWith('.md')).map((f) => join(dir, f)))];

describe.each(allPages)('links of %s', (page) => {
  it('links point to files of the repository that exist, or to the web', () => {
    const text = readFileSync(page, 'utf8').replace(/^( *)```[\s\S]*?^\1```/gm, '');
    for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1];
      if (/^(https?:|mailto:|#)/.test(target)) continue;
      const file = resolve(dirname(page), target.split('#')[0]);
      expect(file.startsWith(root + '/'), `${page}: ${target} is outside the repository`).toBe(true);
      expect(existsSync(file), `${page}: ${target} does not exist`).toBe(true);
    }
  });
});
