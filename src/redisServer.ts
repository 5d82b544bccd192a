import { ChildProcess, spawn } from 'child_process';
import fs from 'fs';
import net from 'net';
import { redisAnswers } from './redis';

/** A redis-server child process started by this process. */
export interface RedisServerHandle {
  url: string;
  port: number;
  process: ChildProcess;
  /** Stops the server (SIGTERM: Redis flushes the AOF and exits) and waits for it to exit. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** @defaultValue a free port on 127.0.0.1 */
  port?: number;
  /** Working directory for AOF/RDB files; created when missing. */
  dir: string;
  /** Turn on the append-only file. @defaultValue true */
  appendonly?: boolean;
  /** @defaultValue `"everysec"` */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** @defaultValue `"redis-server"` from PATH */
  binary?: string;
}

/** Thrown when redis-server is not installed. */
export class RedisServerMissingError extends Error {
  override name = 'RedisServerMissingError';
  constructor() {
    super(
      'no Redis answers on 127.0.0.1 and no redis-server is on PATH: install one (Debian/Ubuntu: ' +
        'sudo apt-get install redis-server; macOS: brew install redis), run `docker compose up -d redis`, ' +
        'or point REDIS_URL / --redis at a running server',
    );
  }
}

/** Finds a TCP port on 127.0.0.1 that nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts a private redis-server bound to 127.0.0.1 and resolves when it answers PING.
 * No RDB snapshots; AOF on unless turned off (tests turn it off).
 */
export async function startRedisServer(opts: RedisServerOptions): Promise<RedisServerHandle> {
  const port = opts.port ?? (await freePort());
  fs.mkdirSync(opts.dir, { recursive: true });
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', opts.dir, '--save', '',
    '--appendonly', opts.appendonly === false ? 'no' : 'yes',
    '--appendfsync', opts.appendfsync ?? 'everysec', '--daemonize', 'no',
  ];
  const child = spawn(opts.binary ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (chunk: Buffer) => {
    if (output.length < 10_000) output += chunk.toString();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));

  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  for (;;) {
    const failed = await Promise.race([
      spawnError.then((err) => err),
      exited.then((code) => new Error(`redis-server exited with code ${code}: ${output.trim().slice(-500)}`)),
      redisAnswers(url, 200).then((up) => (up ? null : undefined)),
    ]);
    if (failed === null) break;
    if (failed instanceof Error) {
      if ((failed as NodeJS.ErrnoException).code === 'ENOENT') throw new RedisServerMissingError();
      throw failed;
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`redis-server on port ${port} did not answer within 10 s: ${output.trim().slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    port,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
