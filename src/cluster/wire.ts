/** Newline-delimited JSON over a socket, with bigints kept (`{"$bigint":"..."}`). */
import type { Socket } from 'node:net';

export function encode(message: unknown): string {
  return `${JSON.stringify(message, (_k, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v))}\n`;
}

export function decode(line: string): unknown {
  return JSON.parse(line, (_k, v) => (v && typeof v === 'object' && typeof v.$bigint === 'string' && Object.keys(v).length === 1 ? BigInt(v.$bigint) : v));
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
