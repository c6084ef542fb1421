/**
 * When cached state may be used without asking the store again: the connection options
 * `recheckCachedData` (chunks in the chunk cache) and `recheckCachedMetadata` (a dataset
 * handle's metadata), TensorStore's `recheck_cached_data` and `recheck_cached_metadata`.
 * Something cached is "confirmed" when the store last said it is current; the time of a
 * confirmation is taken before the store is asked, so nothing is trusted from earlier than it
 * was known current.
 */
import { OptionError } from './errors.js';

/** The time now, epoch ms (to a fraction of a millisecond), as confirmations are stamped. */
export const now = (): number => performance.timeOrigin + performance.now();

/**
 * A `recheckCached*` option as given: `true` (the default: always ask), `false` (never ask),
 * or a finite time in seconds since the epoch (trust what was confirmed at or after it).
 */
export function checkRecheck(name: string, value: unknown): boolean | number {
  if (value === undefined) return true;
  if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) return value;
  throw new OptionError(`option ${name} must be true, false or a time in seconds since the epoch, got ${typeof value === 'bigint' ? `${value}n` : JSON.stringify(value)}`);
}

/** From when (epoch ms) a confirmation is trusted, for a `recheckCached*` option: `true` never, `false` always. */
export function trustedSince(recheck: boolean | number): number {
  if (typeof recheck === 'boolean') return recheck ? Infinity : -Infinity;
  return recheck * 1000;
}
