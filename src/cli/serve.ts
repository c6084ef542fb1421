/**
 * `dosna serve`: the h5grove API and the viewer page over one connection, until interrupted.
 */
import { serve } from '../serve/server.js';
import { CONNECTION_HELP, UsageError, withCliConnection } from './common.js';

export const SERVE_HELP = `usage: dosna serve --connection NAME [--backend B] [--connection-options k=v ...] [--engine E]
                   [--host 127.0.0.1] [--port 8080] [--token T] [--max-bytes N] [--quiet]

Serves the connection over HTTP until interrupted (Ctrl-C): a viewer page at /, and the h5grove
4.0 API (/meta, /attr, /data, /paths, /stats) for H5Web, with the connection's name as the
"file". Read-only.

  --host H         address to bind (default 127.0.0.1); beyond loopback a token is required
  --port P         port (default 8080; 0 picks a free one)
  --token T        every request must carry it: Authorization: Bearer T, or ?token=T
                   (open the page as http://host:port/?token=T); default: $DOSNA_SERVE_TOKEN
  --max-bytes N    largest selection one request reads (default 268435456, 256 MiB)
  --quiet          do not log requests (method, URL, status, milliseconds) to stderr

${CONNECTION_HELP}`;

const positiveInteger = (text: string, flag: string) => {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} must be a non-negative integer, got ${JSON.stringify(text)}\n\n${SERVE_HELP}`);
  return n;
};

export async function serveCommand(argv: readonly string[]): Promise<number> {
  const flags = {
    host: { type: 'string' }, port: { type: 'string' }, token: { type: 'string' }, 'max-bytes': { type: 'string' }, quiet: { type: 'boolean', default: false },
  } as const;
  return withCliConnection(argv, SERVE_HELP, flags, async (con, positionals, _json, values) => {
    if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got ${positionals.join(' ')}\n\n${SERVE_HELP}`);
    const maxBytes = values['max-bytes'] === undefined ? undefined : positiveInteger(values['max-bytes'] as string, '--max-bytes');
    if (maxBytes === 0) throw new UsageError(`--max-bytes must be positive\n\n${SERVE_HELP}`);
    const token = (values.token as string | undefined) ?? process.env.DOSNA_SERVE_TOKEN;
    const server = await serve(con, {
      host: (values.host as string | undefined) ?? '127.0.0.1',
      port: values.port === undefined ? 8080 : positiveInteger(values.port as string, '--port'),
      ...(token ? { token } : {}),
      ...(maxBytes ? { maxBytes } : {}),
      ...(values.quiet ? {} : { log: (line: string) => console.error(line) }),
    });
    console.log(`dosna serve: ${con.backend} connection ${con.name} on ${server.url}/${token ? ' (open it with ?token=...)' : ''}`);
    console.log(`H5Web: <H5GroveProvider url="${server.url}" filepath="${con.name}">`);
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await server.close();
  });
}
