/** The engine registry: adding an engine is one file plus one line here. */
import type { Engine } from '../engine.js';

const loaders: Record<string, () => Promise<{ engine: Engine }>> = {
  cpu: () => import('./cpu.js'),
  'worker-pool': () => import('./worker-pool.js'),
  'cluster-rank': () => import('./cluster-rank.js'),
  queue: () => import('./queue.js'),
};

export const engineNames: readonly string[] = Object.freeze(Object.keys(loaders));

export async function loadEngine(name: string): Promise<Engine> {
  return (await loaders[name]()).engine;
}
