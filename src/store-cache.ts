/**
 * Stores opened from connection settings, once per settings per thread: for the places that
 * run chunk tasks away from the caller's connection (worker threads, queue workers).
 */
import { loadBackend } from './backends/index.js';
import type { ConnectionSettings, Store } from './store.js';

export const settingsKey = (settings: ConnectionSettings): string => JSON.stringify(settings);

const opened = new Map<string, Promise<Store>>();

/** A connected store for these settings, opened on first use (a failed open is tried again next time). */
export function openStore(settings: ConnectionSettings): Promise<Store> {
  const key = settingsKey(settings);
  let store = opened.get(key);
  if (!store) {
    store = loadBackend(settings.backend).then(async (backend) => {
      const s = backend.open(settings.name, settings.options);
      await s.connect();
      return s;
    });
    store.catch(() => opened.delete(key));
    opened.set(key, store);
  }
  return store;
}
