// Builds dosna's native module (native/*.c: the strided copy, the gaussian pass, malloc's thresholds, V8's count of shared memory, the swap of chunk files, one-call chunk file I/O and the placement of dataset folders) at install, with the node-gyp that npm ships
// and the Node headers npm is configured with (nothing is downloaded when they are local).
// The module is optional: where it cannot be built (no C compiler, no headers), dosna copies
// with its JavaScript loops instead, so a failed build warns and leaves the install working.
// DOSNA_NATIVE=0 skips the build.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
if (process.env.DOSNA_NATIVE === '0') {
  console.log('dosna: DOSNA_NATIVE=0, not building the native copy');
  process.exit(0);
}
const bundled = join(dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
const nodeGyp = process.env.npm_config_node_gyp || (existsSync(bundled) ? bundled : undefined);
if (!nodeGyp) {
  console.warn('dosna: node-gyp not found; the native copy is not built and dosna copies with JavaScript (slower)');
  process.exit(0);
}
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild'], { cwd: join(root, 'native'), stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(`dosna: building the native copy failed (${result.error?.message ?? `exit ${result.status}`}); dosna copies with JavaScript (slower)`);
}
