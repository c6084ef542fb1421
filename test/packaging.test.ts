/**
 * Installing dosna from a checkout, as another project does: `npm install <path to a clone>`
 * must give an importable package (the `prepare` script builds dist/, as for packages
 * installed from git) and a working `dosna` command. The checkout is a copy of this one
 * without dist/, so the build must happen during the install.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve('.');

describe('installing from a checkout', () => {
  const work = mkdtempSync(join(tmpdir(), 'dosna-install-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('npm install <checkout> builds the package: import works and the dosna command runs', async () => {
    const checkout = join(work, 'dosna');
    mkdirSync(checkout);
    for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'bin', 'README.md', 'native', 'scripts/build-native.mjs']) {
      // The native module's sources, not this checkout's build of them.
      cpSync(join(root, entry), join(checkout, entry), { recursive: true, filter: (from) => !from.startsWith(join(root, 'native', 'build')) });
    }
    expect(existsSync(join(checkout, 'native', 'build'))).toBe(false);
    // The clone's own dependencies, as `npm ci` in it would have installed them (no network here).
    symlinkSync(join(root, 'node_modules'), join(checkout, 'node_modules'));
    expect(existsSync(join(checkout, 'dist'))).toBe(false);

    const project = join(work, 'project');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-dosna', version: '1.0.0', type: 'module', private: true }));
    await run('npm', ['install', '--no-audit', '--no-fund', '--offline', checkout], { cwd: project, timeout: 240_000 });
    expect(existsSync(join(checkout, 'dist', 'index.js'))).toBe(true);
    // The install script compiled the native copy from its C source.
    expect(existsSync(join(checkout, 'native', 'build', 'Release', 'dosna_native.node'))).toBe(true);

    writeFileSync(join(project, 'main.js'), `
      import * as dn from 'dosna';
      await dn.withConnection('installed', async (con) => {
        const ds = await con.createDataset('x', { data: dn.ndarray(Int32Array.of(1, 2, 3, 4), [2, 2]) });
        console.log(JSON.stringify(Array.from((await ds.get([dn.s(), 1])).data)));
        // The viewer page is bundled from the package's own sources.
        const server = await dn.serve(con);
        const script = await (await fetch(server.url + '/app.js')).text();
        const meta = await (await fetch(server.url + '/meta?file=installed&path=/x')).json();
        console.log(script.length > 5000, JSON.stringify(meta.shape), dn.nativeStatus().loaded);
        await server.close();
      });`);
    const { stdout } = await run(process.execPath, ['main.js'], { cwd: project, timeout: 60_000 });
    expect(stdout.trim()).toBe('[2,4]\ntrue [2,2] true');
    const version = await run(join(project, 'node_modules', '.bin', 'dosna'), ['--version'], { cwd: project, timeout: 60_000 });
    expect(version.stdout).toMatch(/^dosna \d+\.\d+\.\d+\n$/);
  }, 300_000);
});
