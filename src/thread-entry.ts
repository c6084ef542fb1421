/**
 * Where a module that runs in worker threads is, and how threads load it: next to the caller,
 * as TypeScript through tsx when the caller runs from sources (a checkout), or as the built
 * JavaScript (an installed package).
 */
import { DosnaError } from './errors.js';

/**
 * The module `name` (without extension) beside `callerUrl` (the caller's `import.meta.url`), and
 * the execArgv its threads need; `who` names the caller in the error when tsx is missing.
 */
export function threadEntry(callerUrl: string, name: string, who: string): { url: URL; execArgv: string[] } {
  if (!callerUrl.endsWith('.ts')) return { url: new URL(`./${name}.js`, callerUrl), execArgv: [] };
  let tsx: string;
  try {
    tsx = import.meta.resolve('tsx');
  } catch {
    throw new DosnaError(`${who} runs from TypeScript sources here and needs the \`tsx\` package to load its threads; install tsx or use the built package`);
  }
  return { url: new URL(`./${name}.ts`, callerUrl), execArgv: ['--import', tsx] };
}
