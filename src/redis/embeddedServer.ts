import { ChildProcess, execFile, spawn } from 'child_process';
import fs from 'fs';
import os from 'os';
import net from 'net';
import path from 'path';
import { promisify } from 'util';
import Redis from 'ioredis';
import { redisAnswers } from './client';
import { RedisServerMissingError } from '../core/errors';

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
  /** More redis-server arguments, e.g. cluster mode. */
  extraArgs?: string[];
  /**
   * Start it in a process group of its own, so a terminal's Ctrl-C (sent to the foreground
   * group) does not stop it before the process that owns it has stopped its roles.
   * @defaultValue false
   */
  ownProcessGroup?: boolean;
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
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    opts.dir,
    '--save',
    '',
    '--appendonly',
    opts.appendonly === false ? 'no' : 'yes',
    '--appendfsync',
    opts.appendfsync ?? 'everysec',
    '--daemonize',
    'no',
    ...(opts.extraArgs ?? []),
  ];
  // In a process group of its own: Ctrl-C in a terminal signals the foreground group, and the
  // server must outlive the roles that use it (the owner stops it last, in closeRuntime).
  const child = spawn(opts.binary ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: opts.ownProcessGroup === true });
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

/** A Redis Cluster of redis-server children on 127.0.0.1, started by this process. */
export interface RedisClusterHandle {
  /** `host:port` of every master. */
  nodes: string[];
  servers: RedisServerHandle[];
  /** Stops every node. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** Number of masters (no replicas). @defaultValue 3 */
  masters?: number;
  /** Each node works in `<dir>/node-<i>`. */
  dir: string;
  /** Turn on the append-only file on every node. @defaultValue false */
  appendonly?: boolean;
}

/**
 * Starts a Redis Cluster on loopback: `masters` redis-servers with `--cluster-enabled yes`,
 * joined by `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes` (which
 * spreads the 16384 slots evenly), and resolves once every node reports cluster_state:ok.
 * For tests and benchmarks; production clusters are set up by their operators.
 */
export async function startRedisCluster(opts: RedisClusterOptions): Promise<RedisClusterHandle> {
  const count = opts.masters ?? 3;
  const servers = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      startRedisServer({
        dir: path.join(opts.dir, `node-${i}`),
        appendonly: opts.appendonly ?? false,
        extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'],
      }),
    ),
  );
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
  };
  const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
  try {
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes'], { timeout: 30_000 });
    const deadline = Date.now() + 20_000;
    for (const server of servers) {
      const probe = new Redis(server.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        for (;;) {
          const info = await probe.cluster('INFO');
          if (/cluster_state:ok/.test(String(info))) break;
          if (Date.now() > deadline) throw new Error(`cluster node ${server.port} not ok after 20 s: ${String(info).split('\n')[0]}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        probe.disconnect();
      }
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { nodes, servers, stop };
}

/** A private redis-server in a temporary folder of its own, and what removes both. */
export interface PrivateRedis {
  server: RedisServerHandle;
  dir: string;
  /** Stops the server and removes its folder. */
  remove(): Promise<void>;
}

/**
 * Starts a private redis-server on a free port, working in a new temporary folder named
 * after `name` (for tests and benchmarks: never a server someone else runs).
 */
export async function startPrivateRedis(name: string, opts: Omit<RedisServerOptions, 'dir'> = {}): Promise<PrivateRedis> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-`));
  const server = await startRedisServer({ appendonly: false, ...opts, dir });
  return {
    server,
    dir,
    async remove() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
