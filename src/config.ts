/**
 * The process-wide choice of backend and engine (DosNa's `dn.use`). A connection keeps the
 * backend and engine that were current when it was made.
 */
import { backendNames } from './backends/index.js';
import { engineNames } from './engines/index.js';
import { DosnaError } from './errors.js';
import { checkObject, checkOptions } from './options.js';

/** What `dn.use` accepts. Either key may be left out; the other stays as it was. */
export interface UseOptions {
  backend?: string;
  engine?: string;
  /** Options for the engine (e.g. `{ threads: 4 }`); reset when the engine changes without new ones. */
  engineOptions?: Record<string, unknown>;
}

interface Selected {
  backend: string;
  engine: string;
  engineOptions: Record<string, unknown>;
}

const selected: Selected = { backend: 'ram', engine: 'cpu', engineOptions: {} };

export function checkBackendName(name: unknown): string {
  if (typeof name !== 'string' || !backendNames.includes(name)) {
    throw new DosnaError(`unknown backend ${JSON.stringify(name)}; available: ${backendNames.join(', ')}`);
  }
  return name;
}

export function checkEngineName(name: unknown): string {
  if (typeof name !== 'string' || !engineNames.includes(name)) {
    throw new DosnaError(`unknown engine ${JSON.stringify(name)}; available: ${engineNames.join(', ')}`);
  }
  return name;
}

/**
 * Selects the backend and/or engine for connections made from now on:
 * `use({ backend: 'hdf5', engine: 'worker-pool' })` or `use('hdf5', 'worker-pool')`.
 */
export function use(options: UseOptions): void;
export function use(backend?: string | null, engine?: string | null): void;
export function use(first?: UseOptions | string | null, second?: string | null): void {
  const options: UseOptions = typeof first === 'object' && first !== null
    ? checkOptions('use', first, ['backend', 'engine', 'engineOptions'])
    : { backend: first ?? undefined, engine: second ?? undefined };
  checkObject('use: engineOptions', options.engineOptions);
  const backend = options.backend === undefined ? selected.backend : checkBackendName(options.backend);
  const engine = options.engine === undefined ? selected.engine : checkEngineName(options.engine);
  let engineOptions = selected.engineOptions;
  if (options.engineOptions !== undefined) engineOptions = { ...options.engineOptions };
  else if (engine !== selected.engine) engineOptions = {};
  Object.assign(selected, { backend, engine, engineOptions });
}

/** The backend and engine that new connections get. */
export function current(): { backend: string; engine: string } {
  return { backend: selected.backend, engine: selected.engine };
}

/** The engine options that new connections get. */
export function currentEngineOptions(): Record<string, unknown> {
  return { ...selected.engineOptions };
}

/** The registered backends and engines. */
export const backends = { get available(): string[] { return [...backendNames]; } };
export const engines = { get available(): string[] { return [...engineNames]; } };
