import express, { Request, Response, Router } from 'express';
import type { IncomingMessage, RequestListener, ServerResponse } from 'http';
import { ID_PATTERN, ID_RULE } from '../../core/event';
import { eraseUser } from '../../profile/erasure';
import type { ApiContext } from '../context';
import { profileTimeline } from '../dashboard';
import { failureResponse, jsonBody, userIdParam } from '../http';
import { route } from '../routeTable';

const PREFIX = '/profile/';

/** The profile routes: GET /profile/:userId (see also withFastProfileRoute), POST /profiles, DELETE /profile/:userId and GET /profile/:userId/timeline. */
export function profilesRouter(api: ApiContext): Router {
  const router = express.Router();

  route(router, 'GET /profile/:userId', async (req: Request, res: Response) => {
    const userId = userIdParam(req, res);
    if (userId === null) return;
    const profile = await api.reader.read(userId);
    if (!profile) {
      res.status(404).json({ error: 'unknown user', user_id: userId });
      return;
    }
    res.json(profile);
  });

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
    const timer = api.metrics.profileReadSeconds.startTimer({ kind: 'batch' });
    const profiles = await api.reader.readMany(ids as string[]);
    timer();
    res.json({ profiles: profiles.map((p, i) => p ?? { user_id: ids[i], error: 'unknown user' }) });
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
    res.json(await profileTimeline(api.redis, api.keys, api.windowTags ?? [], userId, Date.now()));
  });
  return router;
}

function send(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * Serves `GET /profile/:userId` straight on node:http, in front of express, which keeps
 * every other route (and any profile request this path does not take: other methods,
 * ids that need express's 400). The bidder's hot path then skips express's routing and
 * response machinery; responses are the same as the express route's.
 */
export function withFastProfileRoute(app: RequestListener, api: Pick<ApiContext, 'reader' | 'redis' | 'log' | 'metrics'>): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (req.method !== 'GET' || !url.startsWith(PREFIX)) return app(req, res);
    const end = url.indexOf('?');
    const raw = url.slice(PREFIX.length, end < 0 ? undefined : end);
    let userId: string;
    try {
      userId = decodeURIComponent(raw);
    } catch {
      return app(req, res);
    }
    if (!ID_PATTERN.test(userId)) return app(req, res);
    const timer = api.metrics.profileReadSeconds.startTimer({ kind: 'single' });
    api.reader.read(userId).then(
      (profile) => {
        timer();
        if (profile) send(res, 200, profile);
        else send(res, 404, { error: 'unknown user', user_id: userId });
      },
      (err: Error) => {
        api.log.error({ err, url }, 'profile read failed');
        const { status, body } = failureResponse(api.redis);
        send(res, status, body);
      },
    );
  };
}
