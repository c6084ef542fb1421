/**
 * Newline-delimited JSON over a socket, keeping what JSON loses: bigints (`{"$bigint":"..."}`),
 * NaN and infinities (`{"$number":"NaN"}`), and typed arrays (`{"$typed":"Float64Array","items":[...]}`),
 * so a reduction's partial results cross between ranks unchanged.
 */
import type { Socket } from 'node:net';

const TYPED: Record<string, new (items: ArrayLike<number> | ArrayLike<bigint>) => unknown> = {
  Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array,
  BigInt64Array: BigInt64Array as never, BigUint64Array: BigUint64Array as never,
};

function replace(_key: string, v: unknown): unknown {
  if (ArrayBuffer.isView(v) && v.constructor.name in TYPED) {
    // Items as numbers (non-finite ones as strings) or bigints as strings.
    return { $typed: v.constructor.name, items: Array.from(v as unknown as ArrayLike<number | bigint>, (x) => (typeof x === 'bigint' || !Number.isFinite(x) ? String(x) : x)) };
  }
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
  return v;
}

export function encode(message: unknown): string {
  return `${JSON.stringify(message, replace)}\n`;
}

export function decode(line: string): unknown {
  return JSON.parse(line, (_k, v) => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return v;
    const keys = Object.keys(v);
    if (keys.length === 1 && typeof v.$bigint === 'string') return BigInt(v.$bigint);
    if (keys.length === 1 && typeof v.$number === 'string') return Number(v.$number);
    if (keys.length === 2 && typeof v.$typed === 'string' && v.$typed in TYPED && Array.isArray(v.items)) {
      const items = v.items as (number | string)[];
      return new TYPED[v.$typed](v.$typed.startsWith('Big') ? items.map((x) => BigInt(x)) : items.map(Number));
    }
    return v;
  });
}

/** Calls `onMessage` for every complete line received on `socket`. */
export function onMessages(socket: Socket, onMessage: (message: unknown) => void): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (data: string) => {
    buffered += data;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      if (line) onMessage(decode(line));
    }
  });
}
