/**
 * `dosna serve`: an HTTP server over one connection that speaks h5grove's API (for H5Web) and
 * serves a built-in viewer page at `/`. Read-only: it answers GET, HEAD and CORS preflights.
 *
 * Anyone who reaches the port reads the data, so binding beyond loopback needs a token, and
 * with a token every request must carry it (an `Authorization: Bearer` header, a `token` query
 * parameter, or the cookie the page gets when opened with `?token=`). Nothing is read from the
 * file system on a request's behalf: the page's files are fixed at start, the rest is the
 * connection's datasets and groups.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { Connection } from '../connection.js';
import { AbortError, OptionError } from '../errors.js';
import { H5GroveApi, HttpError, type Query } from './h5grove.js';
import { pageAssets, type Asset } from './assets.js';

/** Options of `serve`. */
export interface ServeOptions {
  /** Address to bind; 127.0.0.1 by default. Anything beyond loopback needs `token`. */
  host?: string;
  /** Port; 0 (the default) picks a free one. */
  port?: number;
  /** The token every request must carry; none by default (then only loopback binding is allowed). */
  token?: string;
  /** Largest selection one `/data` or `/stats` request reads, in bytes (default 256 MiB). */
  maxBytes?: number;
  /** Called for each request answered (method, URL without the token, status, milliseconds). */
  log?: (line: string) => void;
}

/** A running server. */
export interface DosnaServer {
  /** Base URL, e.g. `http://127.0.0.1:8080` (no trailing slash, as H5GroveProvider's `url`). */
  readonly url: string;
  readonly port: number;
  /** Stops accepting requests, cancels those running, and resolves when the server is closed. */
  close(): Promise<void>;
}

const SERVE_OPTIONS = ['host', 'port', 'token', 'maxBytes', 'log'];
const COOKIE = 'dosna_token';

/** Whether `host` names this machine's loopback interface only. */
export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '[::1]';
}

/** Constant-time comparison of two tokens (through their hashes, so lengths leak nothing either). */
function sameToken(given: string, token: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(token));
}

/** Query parameters, repeated keys as arrays. */
function queryOf(url: URL): Query {
  const query: Query = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0] : values;
  }
  return query;
}

function cookieToken(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === COOKIE) return decodeURIComponent(value.join('='));
  }
  return undefined;
}

/**
 * Serves connection `con` over HTTP: h5grove's API at `/meta`, `/attr`, `/data`, `/paths`,
 * `/stats` (with or without a trailing slash) for the "file" named as the connection, and the
 * viewer page at `/`. Throws `OptionError` for an unknown option, or a host beyond loopback
 * without a token.
 */
export async function serve(con: Connection, options: ServeOptions = {}): Promise<DosnaServer> {
  const unknown = Object.keys(options).filter((k) => !SERVE_OPTIONS.includes(k));
  if (unknown.length > 0) throw new OptionError(`unknown serve option${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (known: ${SERVE_OPTIONS.join(', ')})`);
  const host = options.host ?? '127.0.0.1';
  const token = options.token === '' ? undefined : options.token;
  if (!isLoopback(host) && token === undefined) {
    throw new OptionError(`serving on ${host} lets anyone who reaches it read the data: give a token (--token, or DOSNA_SERVE_TOKEN), or bind to 127.0.0.1`);
  }
  const maxBytes = options.maxBytes ?? 256 * 2 ** 20;
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) throw new OptionError(`maxBytes must be a positive integer, got ${maxBytes}`);
  const api = new H5GroveApi(con, con.name, maxBytes);
  // The page's files, and what it shows of the connection (never its options: they may hold secrets).
  const assets = new Map(await pageAssets());
  assets.set('/dosna.json', { body: JSON.stringify({ file: con.name, backend: con.backend, engine: con.engine, maxBytes }), contentType: 'application/json' });
  const running = new Set<AbortController>();

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const started = performance.now();
    const url = new URL(req.url ?? '/', 'http://dosna.invalid');
    const controller = new AbortController();
    running.add(controller);
    // What the log shows of the request: never the token.
    const shown = new URL(url);
    shown.searchParams.delete('token');
    const request = `${req.method} ${shown.pathname}${shown.search}`;
    const elapsed = () => `${(performance.now() - started).toFixed(1)} ms`;
    // One log line per request, when its connection is done with it. A client that went away
    // before the answer was ready cancels the read: no new chunk starts for it.
    let answer: string | undefined;
    res.on('close', () => {
      running.delete(controller);
      if (res.writableFinished) options.log?.(`${request} ${answer} ${elapsed()}`);
      else if (answer !== undefined) options.log?.(`${request} ${answer} cut off: the client closed the connection after ${elapsed()}`);
      else {
        controller.abort(new AbortError('the client closed the connection'));
        options.log?.(`${request} cancelled: the client closed the connection after ${elapsed()}`);
      }
    });
    const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': 'Authorization', 'access-control-allow-methods': 'GET, HEAD' };
    const send = (status: number, body: Buffer | string, headers: Record<string, string>) => {
      const bytes = typeof body === 'string' ? Buffer.from(body) : body;
      res.writeHead(status, { ...cors, 'content-length': String(bytes.length), 'cache-control': 'no-store', ...headers });
      answer = `${status} ${bytes.length} B`;
      res.end(req.method === 'HEAD' ? undefined : bytes);
    };
    const fail = (status: number, message: string) => send(status, JSON.stringify({ message }), { 'content-type': 'application/json' });
    try {
      if (req.method === 'OPTIONS') return send(204, '', {});
      if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, `${req.method} is not allowed: dosna serve is read-only`);
      const queryToken = url.searchParams.get('token') ?? undefined;
      if (token !== undefined) {
        const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
        const given = bearer ?? queryToken ?? cookieToken(req);
        if (given === undefined || !sameToken(given, token)) return fail(401, given === undefined ? 'this server needs a token: an Authorization: Bearer header or ?token=' : 'wrong token');
      }
      const route = url.pathname.replace(/\/+$/, '') || '/';
      const asset: Asset | undefined = assets.get(route);
      if (asset) {
        // The page was opened with ?token=: keep it in a cookie for the page's own requests.
        const cookie: Record<string, string> = token !== undefined && queryToken !== undefined
          ? { 'set-cookie': `${COOKIE}=${encodeURIComponent(queryToken)}; HttpOnly; SameSite=Strict; Path=/` } : {};
        return send(200, asset.body, { 'content-type': asset.contentType, ...cookie });
      }
      const query = queryOf(url);
      const payload = await api.handle(route.slice(1), query, controller.signal);
      const disposition: Record<string, string> = payload.filename ? { 'content-disposition': `attachment; filename="${payload.filename}"` } : {};
      return send(200, payload.body, { 'content-type': payload.contentType, ...disposition });
    } catch (error) {
      if (res.headersSent || res.destroyed) return;
      if (error instanceof HttpError) return fail(error.status, error.message);
      if (error instanceof AbortError && controller.signal.aborted) return; // nobody is listening
      const e = error as Error;
      // A DosnaError here is about the data (a corrupt chunk, a store that went away): the
      // client learns what, the server keeps running.
      return fail(500, `${e.name}: ${e.message}`);
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      // Never crash the server for one request.
      options.log?.(`internal error: ${(error as Error).stack ?? String(error)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'internal error' }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('the server has no TCP address');
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${shownHost}:${address.port}`,
    port: address.port,
    close: () => new Promise<void>((resolve, reject) => {
      for (const c of running) c.abort(new AbortError('the server is closing'));
      server.close((error) => (error ? reject(error) : resolve()));
      server.closeAllConnections();
    }),
  };
}
