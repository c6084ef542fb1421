// Prints vitest's JSON report as one line: "N passed, N failed[, N skipped]".
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? '.vitest-report.json';
let report;
try {
  report = JSON.parse(readFileSync(file, 'utf8'));
} catch (error) {
  console.log(`0 passed, 1 failed (no test report at ${file}: ${error.message})`);
  process.exit(1);
}
const passed = report.numPassedTests ?? 0;
// A test file that fails to load counts as a failure even when none of its tests ran.
const failedSuites = (report.testResults ?? []).filter((r) => r.status === 'failed' && (r.assertionResults ?? []).length === 0).length;
// Failures that belong to no test (test/support/global-setup.ts: files the tests left behind).
let extra = [];
try {
  extra = JSON.parse(readFileSync(new URL('../.vitest-extra-failures.json', import.meta.url), 'utf8'));
} catch {
  extra = [];
}
for (const f of extra) console.log(`FAIL ${f.name}: ${f.message}`);
const failed = (report.numFailedTests ?? 0) + failedSuites + extra.length;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
// Vitest's own exit code misses the failures it does not know of (the extra ones above).
if (failed > 0) process.exitCode = 1;
