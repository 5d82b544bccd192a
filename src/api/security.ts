import { createHash, timingSafeEqual } from 'crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'http';
import helmet from 'helmet';
import { ApiKey, Role } from '../core/apiKeys';
import { ROUTES, matchRoute, requestPath } from './routeTable';

/**
 * The role a request needs, from the route table: null for a public route. HEAD needs
 * what GET needs; a request no route serves needs `read` (it answers 404 once allowed), so
 * probing for routes takes a key too. `path` is the request's path as express routes it
 * (see requestPath): case and a trailing slash do not change the route, hence the role.
 */
export function requiredRole(method: string, path: string): Role | null {
  const served = matchRoute(method, path);
  return served ? ROUTES[served.key] : 'read';
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/**
 * Checks `Authorization: Bearer <key>` against the configured keys. Every key is compared
 * (SHA-256 digests with timingSafeEqual), so the time taken says nothing about which
 * key, or how much of one, matched.
 */
export class Authenticator {
  private readonly digests: { digest: Buffer; role: Role; id: number }[];

  constructor(keys: readonly ApiKey[]) {
    this.digests = keys.map((k, id) => ({ digest: digest(k.key), role: k.role, id }));
  }

  get enabled(): boolean {
    return this.digests.length > 0;
  }

  /** The role and index of the presented key, or null when there is none or it is unknown. */
  identify(authorization: string | undefined): { role: Role; id: number } | null {
    const m = /^Bearer ([^\s]{1,512})$/.exec(authorization ?? '');
    if (!m) return null;
    const presented = digest(m[1]);
    let found: { role: Role; id: number } | null = null;
    for (const d of this.digests) if (timingSafeEqual(presented, d.digest) && !found) found = { role: d.role, id: d.id };
    return found;
  }

  static allows(role: Role, needed: Role): boolean {
    return role === 'admin' || role === needed;
  }
}

/**
 * A token bucket per client (API key, or remote address without keys): `perSecond`
 * requests a second on average, bursts up to `perSecond`. Buckets idle for a minute are
 * dropped, so memory follows the active clients.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private lastSweep = 0;

  constructor(
    readonly perSecond: number,
    private readonly clock: () => number = Date.now,
  ) {}

  /** 0 when the request may go; otherwise the seconds to wait (for Retry-After). */
  take(client: string): number {
    const now = this.clock();
    if (now - this.lastSweep > 60_000) {
      for (const [k, b] of this.buckets) if (now - b.at > 60_000) this.buckets.delete(k);
      this.lastSweep = now;
    }
    const b = this.buckets.get(client) ?? { tokens: this.perSecond, at: now };
    b.tokens = Math.min(this.perSecond, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    this.buckets.set(client, b);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil((1 - b.tokens) / this.perSecond));
  }
}

export interface SecurityOptions {
  keys: readonly ApiKey[];
  /** Requests per second per key (or per address without keys); 0 = no limit. */
  rateLimitPerS: number;
  /** Larger declared bodies are refused with 413 before a byte of them is read. */
  maxBodyBytes: number;
}

function refuse(res: ServerResponse, status: number, error: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error });
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/**
 * Wraps the API's request listener: security headers (helmet) on every response; a
 * declared body over the limit refused at once with `Connection: close` (the rest is never
 * read); API keys and roles (401 without a valid key, 403 for the wrong role) on every route
 * the route table does not mark public; then the rate limit (429 with Retry-After), on
 * those same routes.
 */
export function withSecurity(inner: RequestListener, opts: SecurityOptions): RequestListener {
  const auth = new Authenticator(opts.keys);
  const limiter = opts.rateLimitPerS > 0 ? new RateLimiter(opts.rateLimitPerS) : undefined;
  const headers = securityHeaders();
  return (req: IncomingMessage, res: ServerResponse) => {
    for (const [name, value] of headers) res.setHeader(name, value);
    {
      const declared = Number(req.headers['content-length']);
      if (Number.isFinite(declared) && declared > opts.maxBodyBytes) {
        return refuse(res, 413, `body over ${opts.maxBodyBytes} bytes`, { connection: 'close' });
      }
      const path = requestPath(req.url ?? '/');
      const needed = requiredRole(req.method ?? 'GET', path);
      let client = req.socket.remoteAddress ?? 'unknown';
      if (needed && auth.enabled) {
        const who = auth.identify(req.headers.authorization);
        if (!who) return refuse(res, 401, 'missing or unknown API key: send Authorization: Bearer <key>', { 'www-authenticate': 'Bearer' });
        if (!Authenticator.allows(who.role, needed)) return refuse(res, 403, `this key's role (${who.role}) may not ${req.method} ${path}: it needs ${needed}`);
        client = `key:${who.id}`;
      }
      if (limiter && needed) {
        const wait = limiter.take(client);
        if (wait > 0) return refuse(res, 429, 'rate limit exceeded: retry later', { 'retry-after': String(wait) });
      }
      inner(req, res);
    }
  };
}

/**
 * helmet's headers for this API, computed once: helmet's middleware sets the same constant
 * headers on every response (no nonces here), so running its chain per request only costs
 * time on the bidder's hot path.
 */
function securityHeaders(): [string, string][] {
  const middleware = helmet({ contentSecurityPolicy: { directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } } });
  const set = new Map<string, string>();
  const recorder = {
    setHeader: (name: string, value: string) => set.set(name.toLowerCase(), String(value)),
    removeHeader: (name: string) => set.delete(name.toLowerCase()),
    getHeader: (name: string) => set.get(name.toLowerCase()),
  };
  let done = false;
  middleware({ headers: {} } as unknown as IncomingMessage, recorder as unknown as ServerResponse, () => (done = true));
  if (!done) throw new Error('helmet did not finish synchronously');
  return [...set];
}
