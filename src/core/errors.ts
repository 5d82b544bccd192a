/**
 * The product's errors, in one place. Each class says how a process ends on it: the CLI
 * exits with `exitCode` and prints the message alone (no stack: these are expected
 * failures a user can act on). Anything else is a bug and is printed with its stack.
 */
export abstract class ProfileStreamError extends Error {
  /** The CLI's exit code for this failure: 1 runtime failure, 2 usage or configuration. */
  abstract readonly exitCode: 1 | 2;
}

/**
 * The product's Redis functions are missing on a server and this Redis user may not load
 * them (only the ACL user `worker`, a realtime consumer's, may): transient while the
 * consumers start, so the API answers 503 with Retry-After.
 */
export class ScriptsNotLoadedError extends ProfileStreamError {
  override name = 'ScriptsNotLoadedError';
  readonly exitCode = 1;
}

/** A read asked for tags the tag config does not have (`tags` names them). */
export class UnknownTagError extends ProfileStreamError {
  override name = 'UnknownTagError';
  readonly exitCode = 2;
  constructor(readonly tags: readonly string[]) {
    super(`unknown tag${tags.length > 1 ? 's' : ''}: ${tags.join(', ')}`);
  }
}

/**
 * A read with a staleness bound (maxLagMs, `?max_lag_ms=`) of a user whose partition's
 * realtime path is further behind than that (lagMs; null: the lag is not known).
 */
export class StaleProfileError extends ProfileStreamError {
  override name = 'StaleProfileError';
  readonly exitCode = 1;
  constructor(
    readonly userId: string,
    readonly lagMs: number | null,
    readonly maxLagMs: number,
  ) {
    super(lagMs === null ? 'the realtime lag is not known' : `the realtime path is ${lagMs} ms behind for this user (more than ${maxLagMs} ms)`);
  }
}

/** A configuration or usage error (a bad option, tag file, id or cluster node); exit code 2. */
export class ConfigError extends ProfileStreamError {
  override name = 'ConfigError';
  readonly exitCode = 2;
}

/** Redis could not be reached, or refused the credentials; exit code 1. The message says what to check. */
export class RedisUnavailableError extends ProfileStreamError {
  override name = 'RedisUnavailableError';
  readonly exitCode = 1;
  constructor(where: string, cause: string) {
    super(
      /\b(WRONGPASS|NOAUTH|NOPERM)\b/.test(cause)
        ? `Redis at ${where} refused the credentials (${cause.replace(/\.$/, '')}): check the user and password in --redis / REDIS_URL (redis://user:password@host:port)`
        : TLS_FAILURE.test(cause)
          ? `TLS to Redis at ${where} failed (${tlsReason(cause)}): give the CA that signed the server's certificate with --redis-tls-ca (REDIS_TLS_CA), ` +
            'a client certificate with --redis-tls-cert and --redis-tls-key if the server asks for one, --redis-tls-servername if the certificate names another host, and a rediss:// URL'
          : `cannot connect to Redis at ${where} (${cause}): is it running? Check --redis / REDIS_URL (or --cluster)` +
            (/ECONNRESET/.test(cause) ? '; a server that wants TLS resets plain connections: then use a rediss:// URL' : ''),
    );
  }
}

/** Node's TLS handshake failures (an unknown CA, a name mismatch, TLS to a plain port, a missing client certificate). */
const TLS_FAILURE = /certificate|self[- ]signed|altnames|\bSSL\b|\bTLS\b|wrong version number|alert|handshake|unable to verify|ERR_TLS/i;

/** An OpenSSL error ("…:SSL routines:fn:tlsv13 alert certificate required:file:line:…") as its reason alone, on one line. */
function tlsReason(cause: string): string {
  const reason = /SSL routines:[^:]*:([^:]+):/.exec(cause)?.[1];
  return (reason ?? cause.split('\n')[0]).trim().replace(/\.$/, '');
}

/** The HTTP API a client command talks to (simulate) cannot be reached, or stopped answering; exit code 1. */
export class ApiUnreachableError extends ProfileStreamError {
  override name = 'ApiUnreachableError';
  readonly exitCode = 1;
}

/** A process could not start: a port in use or not allowed; exit code 1. */
export class StartupError extends ProfileStreamError {
  override name = 'StartupError';
  readonly exitCode = 1;
}

/**
 * The error of a server that failed to listen on host:port, as an instruction: `option`
 * names the flag that sets the port (--port, --metrics-port).
 */
export function listenError(err: NodeJS.ErrnoException, host: string, port: number, option: string): Error {
  const where = `${host}:${port}`;
  if (err.code === 'EADDRINUSE')
    return new StartupError(`port ${port} on ${host} is already in use (another profile up or serve?): stop that process or choose another ${option}`);
  if (err.code === 'EACCES') return new StartupError(`no permission to listen on ${where}: ports below 1024 need privileges; choose another ${option}`);
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND')
    return new ConfigError(`cannot listen on ${where}: ${host} is not an address of this machine; check --host / HOST`);
  return err;
}

/** Nothing answers on the default Redis port and no redis-server binary is installed; exit code 1. */
export class RedisServerMissingError extends ProfileStreamError {
  override name = 'RedisServerMissingError';
  readonly exitCode = 1;
  constructor() {
    super(
      'no Redis answers on 127.0.0.1 and no redis-server is on PATH: install one (Debian/Ubuntu: ' +
        'sudo apt-get install redis-server; macOS: brew install redis), run `docker compose up -d redis`, ' +
        'or point REDIS_URL / --redis at a running server',
    );
  }
}

/** Another batch run holds the batch lock; exit code 1. */
export class BatchBusyError extends ProfileStreamError {
  override name = 'BatchBusyError';
  readonly exitCode = 1;
  constructor(readonly runningRunId: string) {
    super(`another batch run is in progress (${runningRunId})`);
  }
}

/** `profile verify` found nothing to compare (no `--windows` run, or one as of another time); exit code 1. */
export class NothingToVerifyError extends ProfileStreamError {
  override name = 'NothingToVerifyError';
  readonly exitCode = 1;
}

/**
 * Error codes of Redis replies the product reacts to: NOSCRIPT (script cache lost: load
 * and retry), NOPERM / NOAUTH / WRONGPASS (ACLs), NOGROUP / BUSYGROUP (consumer groups).
 */
export type RedisErrorCode = 'NOSCRIPT' | 'NOPERM' | 'NOAUTH' | 'WRONGPASS' | 'NOGROUP' | 'BUSYGROUP' | 'MOVED' | 'ASK' | 'TRYAGAIN' | 'CLUSTERDOWN';

const CODE_PATTERNS = new Map<RedisErrorCode, RegExp>();

/**
 * True when `err` is a Redis error reply with one of `codes`. Redis puts the code first
 * in the reply ("NOGROUP No such key ..."); a script or pipeline may wrap it in a longer
 * message, so the code is looked for as a word anywhere in it.
 */
export function isRedisError(err: unknown, ...codes: RedisErrorCode[]): boolean {
  const message = err instanceof Error ? err.message : typeof err === 'string' ? err : '';
  return codes.some((code) => {
    let pattern = CODE_PATTERNS.get(code);
    if (!pattern) CODE_PATTERNS.set(code, (pattern = new RegExp(`\\b${code}\\b`)));
    return pattern.test(message);
  });
}

/**
 * Redis trouble that says nothing about the request or the event: out of memory (OOM under
 * noeviction), unreachable or gone, loading its data, busy with a script, read-only (a
 * replica after a failover), its cluster down, or out of client slots (maxclients). The
 * API answers 503 with Retry-After; a consumer retries the same batch in place, so the
 * trouble never counts as a failed delivery of the events.
 */
export function isRedisTrouble(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (previousErrors(err).some(isRedisTrouble)) return true;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  return REDIS_TROUBLE.test(err.message);
}

const REDIS_TROUBLE = new RegExp(
  [
    '\\bOOM command not allowed',
    '^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\\b',
    'max number of clients reached',
    '^Connection is closed',
    "^Stream isn't writeable",
    '\\bconnection to Redis lost\\b',
    '\\b(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND)\\b',
    'Failed to refresh slots cache',
    'None of startup nodes is available',
  ].join('|'),
);

/** The errors of the commands of a MULTI that EXECABORT discarded (ioredis's previousErrors); [] for any other error. */
export function previousErrors(err: unknown): unknown[] {
  const previous = (err as { previousErrors?: unknown } | null)?.previousErrors;
  return Array.isArray(previous) ? previous : [];
}

/** Why Redis could not do it, in a few words for a 503 body: out of memory, or unavailable. */
export function redisTroubleText(err: unknown): string {
  const errors = [err, ...previousErrors(err)];
  return errors.some((e) => e instanceof Error && /\bOOM\b/.test(e.message)) ? 'Redis is out of memory (maxmemory reached)' : 'Redis unavailable';
}

/** A stream command's reply for a stream that does not exist ("ERR no such key"). */
export function isNoSuchKey(err: unknown): boolean {
  return err instanceof Error && /no such key/i.test(err.message);
}
