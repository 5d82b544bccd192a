import express, { Request, Response, Router } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'http';
import { ID_PATTERN, ID_RULE } from '../../core/event';
import { eraseUser } from '../../profile/erasure';
import { flatProfile } from '../../profile/flat';
import type { ApiContext } from '../context';
import { profileTimeline } from '../../profile/timeline';
import { userFirings } from '../../profile/triggers';
import { BAD_USER_ID, failureResponse, jsonBody, logFailure, staleResponse, userIdParam } from '../http';
import { StaleProfileError } from '../../core/errors';
import { RouteKey, pathMatcher, requestPath, route } from '../routeTable';

/** The bidder's hot path, served by {@link withFastProfileRoute} and by no express route. */
export const FAST_PROFILE_ROUTE = 'GET /profile/:userId' satisfies RouteKey;

/** POST /profiles, DELETE /profile/:userId and GET /profile/:userId/timeline (GET /profile/:userId: see withFastProfileRoute). */
export function profilesRouter(api: ApiContext): Router {
  const router = express.Router();

  route(router, 'POST /profiles', jsonBody(api.maxBodyBytes), async (req: Request, res: Response) => {
    const ids = (req.body as { user_ids?: unknown } | undefined)?.user_ids;
    const max = api.maxProfilesPerRequest;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > max) {
      res.status(400).json({ error: `body must be { "user_ids": [...] } with 1 to ${max} ids` });
      return;
    }
    const bad = ids.findIndex((id) => typeof id !== 'string' || !ID_PATTERN.test(id));
    if (bad >= 0) {
      res.status(400).json({ error: `user_ids[${bad}] must be ${ID_RULE}` });
      return;
    }
    const asked = (req.body as { tags?: unknown }).tags;
    const { tags, error } = asked === undefined ? {} : checkTags(asked, api.reader);
    if (error) {
      res.status(400).json({ error });
      return;
    }
    const bound = (req.body as { max_lag_ms?: unknown }).max_lag_ms;
    const { maxLagMs, error: lagError } = bound === undefined ? {} : checkMaxLag(bound);
    if (lagError) {
      res.status(400).json({ error: lagError });
      return;
    }
    // With max_lag_ms, users whose partition is further behind are answered as stale, unread.
    const lags = maxLagMs === undefined ? [] : (ids as string[]).map((id) => api.reader.lagMs(id));
    const stale = (i: number) => maxLagMs !== undefined && (lags[i] === null || lags[i]! > maxLagMs);
    const fresh = (ids as string[]).filter((_, i) => !stale(i));
    const timer = api.metrics.profileReadSeconds.startTimer({ kind: 'batch' });
    const read = fresh.length > 0 ? await api.reader.readMany(fresh, { tags }) : [];
    timer();
    let next = 0;
    const profiles = (ids as string[]).map((id, i) =>
      stale(i) ? { user_id: id, error: 'stale', lag_ms: lags[i] } : (read[next++] ?? { user_id: id, error: 'unknown user' }),
    );
    res.json({ profiles });
  });

  route(router, 'DELETE /profile/:userId', async (req: Request, res: Response) => {
    const userId = userIdParam(req, res);
    if (userId === null) return;
    const erasedAt = Date.now();
    const deleted = await eraseUser(api.adminRedis ?? api.redis, api.keys, userId, erasedAt);
    api.log.info({ erased_at: erasedAt, keys_deleted: deleted }, 'user erased'); // the id itself is personal data: not logged
    res.json({ user_id: userId, erased_at: erasedAt, keys_deleted: deleted });
  });

  route(router, 'GET /profile/:userId/timeline', async (req: Request, res: Response) => {
    const userId = userIdParam(req, res);
    if (userId === null) return;
    const [timeline, firings] = await Promise.all([
      profileTimeline(api.redis, api.keys, api.windowTags ?? [], userId, Date.now()),
      (api.triggers ?? []).length > 0 ? userFirings(api.redis, api.keys, api.partitions, userId) : Promise.resolve([]),
    ]);
    if (timeline === null) {
      res.status(404).json({ error: 'unknown user', user_id: userId });
      return;
    }
    res.json({ ...timeline, firings });
  });
  return router;
}

/** A JSON answer with the headers the fast path always sent (no ETag); no body for HEAD. */
function send(res: ServerResponse, status: number, value: unknown, head: boolean, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(head ? undefined : body);
}

/** The 400 body for a `view` query parameter other than `flat`. */
export const BAD_VIEW = { error: 'view must be "flat" (one flat object of strings), or absent for the fused profile' } as const;

/**
 * The view of GET /profile/:userId a request target asks for: `fused` (no `view` parameter)
 * or `flat` (`view=flat`, once); null for any other `view`. The query is parsed only when
 * the target has one (express's reading: after the first `?`, up to a `#`).
 */
export function profileView(url: string): 'fused' | 'flat' | null {
  const views = queryOf(url)?.getAll('view') ?? [];
  if (views.length === 0) return 'fused';
  return views.length === 1 && views[0] === 'flat' ? 'flat' : null;
}

/** The query string of a request target (express's reading: after the first `?`, up to a `#`), or null. */
function queryOf(url: string): URLSearchParams | null {
  const query = url.indexOf('?');
  if (query < 0) return null;
  const hash = url.indexOf('#');
  if (hash >= 0 && hash < query) return null;
  return new URLSearchParams(url.slice(query + 1, hash < 0 ? undefined : hash));
}

/**
 * The tags a GET /profile/:userId asks for with `tags=a,b` (once; names separated by
 * commas): undefined without `tags` (every tag), or the 400 body for an empty list, a
 * repeated parameter or a name the tag config does not have.
 */
export function profileTags(url: string, reader: { unknownTags(tags: readonly string[]): string[] }): { tags?: string[]; error?: string } {
  const given = queryOf(url)?.getAll('tags') ?? [];
  if (given.length === 0) return {};
  return checkTags(given.length === 1 ? given[0].split(',').map((t) => t.trim()) : null, reader);
}

const MAX_LAG_RULE = 'max_lag_ms must be a whole number of milliseconds, 0 or more';

/** A `max_lag_ms` given once as a whole number ≥ 0 (query text or JSON), or the 400 body. */
export function checkMaxLag(value: unknown): { maxLagMs?: number; error?: string } {
  const n = typeof value === 'string' && /^\d{1,12}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) return { error: MAX_LAG_RULE };
  return { maxLagMs: n };
}

/** The staleness bound of a GET /profile/:userId (`max_lag_ms=N`, once): undefined without it, or the 400 body. */
export function profileMaxLag(url: string): { maxLagMs?: number; error?: string } {
  const given = queryOf(url)?.getAll('max_lag_ms') ?? [];
  if (given.length === 0) return {};
  return given.length === 1 ? checkMaxLag(given[0]) : { error: MAX_LAG_RULE };
}

/** The tags of a read (a list of names), or the 400 body that says what is wrong with them. */
export function checkTags(tags: unknown, reader: { unknownTags(tags: readonly string[]): string[] }): { tags?: string[]; error?: string } {
  const rule = 'tags must list one or more tag names, separated by commas (?tags=views_5m,clicks_24h) or as a JSON array of strings (POST /profiles)';
  if (!Array.isArray(tags) || tags.length === 0 || tags.some((t) => typeof t !== 'string' || t === '')) return { error: rule };
  const unknown = reader.unknownTags(tags as string[]);
  if (unknown.length > 0) return { error: `unknown tag${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}` };
  return { tags: tags as string[] };
}

/** A raw path parameter decoded as express decodes it; null when its percent-encoding is malformed. */
function decodeParam(raw: string): string | null {
  try {
    return decodeURIComponent(raw);
  } catch {
    return null;
  }
}

/**
 * Serves `GET /profile/:userId` (and HEAD: same status and headers, no body) straight on
 * node:http, in front of express, which keeps every other route, `/profile/:id/timeline`
 * and the other methods on /profile/:id included. The bidder's hot path then skips
 * express's routing and response machinery. The path is matched as express would match it
 * (case, trailing slash); an id that breaks the rule, or whose percent-encoding is
 * malformed, is a 400 naming the rule. `?view=flat` answers the original system's shape
 * instead (see flatProfile); any other `view` is a 400. `?tags=a,b` evaluates and answers
 * only those tags (an unknown name: a 400 naming it).
 */
export function withFastProfileRoute(app: RequestListener, api: Pick<ApiContext, 'reader' | 'redis' | 'log' | 'metrics' | 'redisOutage'>): RequestListener {
  const profilePath = pathMatcher(FAST_PROFILE_ROUTE);
  return (req: IncomingMessage, res: ServerResponse) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) return app(req, res);
    const url = req.url ?? '';
    const params = profilePath(requestPath(url));
    if (!params) return app(req, res);
    const userId = decodeParam(params.userId);
    if (userId === null || !ID_PATTERN.test(userId)) return send(res, 400, BAD_USER_ID, head);
    const view = profileView(url);
    if (view === null) return send(res, 400, BAD_VIEW, head);
    const { tags, error } = profileTags(url, api.reader);
    if (error) return send(res, 400, { error }, head);
    const { maxLagMs, error: lagError } = profileMaxLag(url);
    if (lagError) return send(res, 400, { error: lagError }, head);
    const timer = api.metrics.profileReadSeconds.startTimer({ kind: 'single' });
    api.reader.read(userId, { tags, maxLagMs }).then(
      (profile) => {
        timer();
        if (profile) send(res, 200, view === 'flat' ? flatProfile(profile) : profile, head);
        else send(res, 404, { error: 'unknown user', user_id: userId }, head);
      },
      (err: Error) => {
        if (err instanceof StaleProfileError) {
          const stale = staleResponse(err);
          return send(res, stale.status, stale.body, head, stale.headers);
        }
        logFailure(api.log, api.redisOutage, api.redis, err, { method: 'GET', path: '/profile/:userId' });
        const { status, body, headers } = failureResponse(api.redis, err);
        send(res, status, body, head, headers);
      },
    );
  };
}
