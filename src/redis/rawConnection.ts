import net from 'net';
import tls from 'tls';
import type { Redis } from 'ioredis';
import Parser from 'redis-parser';

/**
 * A connection of its own to one Redis server, for bulk writes and the consumer fold's
 * transaction: the caller hands it commands already encoded as RESP, in large writes, and
 * gets the replies back in order. ioredis builds a Command, a promise and a Buffer per
 * argument for every command, which costs about four times Redis's own work on a bulk load
 * (82k offline profiles: 1.3 s on an ioredis pipeline, 0.3 s here); replies are parsed by
 * redis-parser, ioredis's own parser (as Buffers with `returnBuffers`). It connects like
 * the ioredis client it is opened from (host and port or socket path, TLS, user and
 * password, database) and does not reconnect: a bulk load that loses its connection fails
 * and is run again; the fold opens another one.
 */

/** RESP encoding of one text argument (a bulk string). */
function bulkString(text: string): string {
  return `$${Buffer.byteLength(text)}\r\n${text}\r\n`;
}

/** RESP encoding of one command. */
export function encodeCommand(args: readonly string[]): string {
  let out = `*${args.length}\r\n`;
  for (const arg of args) out += bulkString(arg);
  return out;
}

/** An argument of a command encoded by RespWriter. */
export type RespArg = string | number | Buffer;

/**
 * RESP encoding of commands whose arguments may be binary (Buffers are copied as they are,
 * strings as UTF-8, numbers as String() writes them, as ioredis sends them): `count`
 * commands, one Buffer.
 */
export class RespWriter {
  private readonly chunks: Buffer[] = [];
  private text = '';
  count = 0;

  command(args: readonly RespArg[]): this {
    this.count++;
    this.text += `*${args.length}\r\n`;
    for (const arg of args) {
      if (Buffer.isBuffer(arg)) {
        this.text += `$${arg.length}\r\n`;
        this.flush();
        this.chunks.push(arg);
        this.text += '\r\n';
      } else {
        this.text += bulkString(typeof arg === 'number' ? String(arg) : arg);
      }
    }
    return this;
  }

  toBuffer(): Buffer {
    this.flush();
    return this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
  }

  private flush(): void {
    if (this.text !== '') this.chunks.push(Buffer.from(this.text));
    this.text = '';
  }
}

/** How RawConnection.open connects. */
export interface RawConnectionOptions {
  /** Replies as Buffers, not strings (binary values). */
  returnBuffers?: boolean;
  /** The connection never keeps the process alive. */
  unref?: boolean;
  /** What the connection is for, in its errors ("bulk-write" by default). */
  name?: string;
}

interface Pending {
  replies: unknown[];
  expected: number;
  resolve: (replies: unknown[]) => void;
  reject: (err: Error) => void;
}

export class RawConnection {
  private readonly pending: Pending[] = [];
  private failure: Error | undefined;
  private readonly name: string;
  /** Settles once the socket is closed (by close(), the server or an error). */
  readonly closed: Promise<void>;

  private constructor(
    private readonly socket: net.Socket,
    opts: RawConnectionOptions,
  ) {
    const name = (this.name = opts.name ?? 'bulk-write');
    const parser = new Parser({
      returnBuffers: opts.returnBuffers === true,
      returnReply: (reply: unknown) => this.reply(reply),
      returnError: (err: Error) => this.reply(err),
      returnFatalError: (err: Error) => this.fail(err),
    });
    socket.on('data', (data: Buffer) => parser.execute(data));
    socket.on('error', (err) => this.fail(new Error(`${name} connection to Redis lost: ${err.message}`)));
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.fail(new Error(`${name} connection to Redis lost: closed`));
        resolve();
      }),
    );
  }

  /** True until the connection failed or was closed. */
  get alive(): boolean {
    return this.failure === undefined;
  }

  /** Opens a connection to the server `client` talks to, with its credentials and database. */
  static async open(client: Redis, opts: RawConnectionOptions = {}): Promise<RawConnection> {
    const o = client.options;
    const target = o.path ? { path: o.path } : { host: o.host ?? '127.0.0.1', port: o.port ?? 6379 };
    const socket = o.tls ? tls.connect({ ...target, ...o.tls, servername: o.tls.servername ?? o.host }) : net.connect(target);
    await new Promise<void>((resolve, reject) => {
      socket.once(o.tls ? 'secureConnect' : 'connect', () => resolve());
      socket.once('error', reject);
    });
    socket.setNoDelay(true);
    if (opts.unref) socket.unref();
    const conn = new RawConnection(socket, opts);
    const hello: string[][] = [];
    if (o.password) hello.push(o.username ? ['AUTH', o.username, o.password] : ['AUTH', o.password]);
    if (o.db) hello.push(['SELECT', String(o.db)]);
    if (hello.length > 0) {
      const replies = await conn.send(hello.map(encodeCommand).join(''), hello.length);
      const err = replies.find((r) => r instanceof Error);
      if (err) {
        conn.close();
        throw err;
      }
    }
    return conn;
  }

  /**
   * Writes `payload` (RESP commands) and resolves with its `replies` replies, in order;
   * an error reply is an Error in the list (inside an EXEC reply too). Calls may overlap:
   * their replies come back in the order they were sent.
   */
  async send(payload: string | Buffer, replies: number): Promise<unknown[]> {
    if (this.failure) throw this.failure;
    const done = new Promise<unknown[]>((resolve, reject) => this.pending.push({ replies: [], expected: replies, resolve, reject }));
    if (!this.socket.write(payload)) {
      // Wait for the socket to take more, or for the connection to fail (then `done` rejects).
      await Promise.race([
        new Promise<void>((resolve) => this.socket.once('drain', () => resolve())),
        done.then(
          () => undefined,
          () => undefined,
        ),
      ]);
    }
    return done;
  }

  close(): void {
    this.failure ??= new Error(`${this.name} connection closed`);
    this.socket.destroy();
  }

  private reply(reply: unknown): void {
    const head = this.pending[0];
    if (!head) return this.fail(new Error('Redis sent a reply nobody asked for'));
    head.replies.push(reply);
    if (head.replies.length === head.expected) {
      this.pending.shift();
      head.resolve(head.replies);
    }
  }

  private fail(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.splice(0)) p.reject(this.failure);
    this.socket.destroy();
  }
}
