import type { IncomingMessage, RequestListener, ServerResponse } from 'http';
import type { RedisClient } from '../../redis/client';
import type { Express } from 'express';
import { ID_PATTERN } from '../../core/event';
import { Logger } from '../../core/logger';
import { ProfileReader } from '../../profile/reader';
import type { Metrics } from '../../ops/metrics';

const PREFIX = '/profile/';

/**
 * The answer to a request that failed for a reason other than its input: 503 while Redis
 * is unreachable (retry later), 500 otherwise; never a stack trace.
 */
export function failureResponse(redis: RedisClient): { status: number; body: { error: string } } {
  return redis.status === 'ready'
    ? { status: 500, body: { error: 'internal error' } }
    : { status: 503, body: { error: 'Redis unavailable, retry later' } };
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
export function withFastProfileRoute(app: Express, reader: ProfileReader, redis: RedisClient, log: Logger, metrics?: Metrics): RequestListener {
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
    const timer = metrics?.profileReadSeconds.startTimer({ kind: 'single' });
    reader.read(userId).then(
      (profile) => {
        timer?.();
        if (profile) send(res, 200, profile);
        else send(res, 404, { error: 'unknown user', user_id: userId });
      },
      (err: Error) => {
        log.error({ err, url }, 'profile read failed');
        const { status, body } = failureResponse(redis);
        send(res, status, body);
      },
    );
  };
}
