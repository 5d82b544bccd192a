import express, { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import type { RedisClient } from '../redis/client';
import { ID_PATTERN, ID_RULE } from '../core/event';
import type { Logger, OutageLog } from '../core/logger';
import { ScriptsNotLoadedError, StaleProfileError, isRedisTrouble, redisTroubleText } from '../core/errors';
import { RouteKey, matchRoute } from './routeTable';

/** The 400 body for a user id that breaks ID_PATTERN, on every route that takes one. */
export const BAD_USER_ID = { error: `user id must be ${ID_RULE}` } as const;

/** The route's `:userId`, or null once a 400 naming the id rule has been sent. */
export function userIdParam(req: Request, res: Response): string | null {
  const userId = req.params.userId as string;
  if (ID_PATTERN.test(userId)) return userId;
  res.status(400).json(BAD_USER_ID);
  return null;
}

/** express's JSON body parser with this API's size limit; `strict: false` lets routes name the wrong shape themselves. */
export function jsonBody(maxBodyBytes: number): RequestHandler {
  return express.json({ limit: maxBodyBytes, strict: false });
}

/**
 * A request failed because of Redis, not of itself or a bug: the connection is not ready,
 * the error is Redis trouble, or the product's functions are not loaded yet.
 */
function redisAtFault(redis: RedisClient, err: unknown): boolean {
  return redis.status !== 'ready' || isRedisTrouble(err) || err instanceof ScriptsNotLoadedError;
}

/** Seconds a client should wait before resending after a 503 on Redis trouble. */
export const REDIS_RETRY_AFTER_S = 1;

/**
 * The answer to a request that failed for a reason other than its input: 503 with
 * Retry-After on Redis trouble (out of memory, unreachable, loading, out of client slots:
 * see isRedisTrouble; retry later), 500 otherwise; never a stack trace.
 */
export function failureResponse(redis: RedisClient, err?: unknown): { status: number; body: Record<string, unknown>; headers: Record<string, string> } {
  if (err instanceof StaleProfileError) return staleResponse(err);
  if (redisAtFault(redis, err)) {
    const text =
      err instanceof ScriptsNotLoadedError ? "the product's Redis functions are not loaded yet (a realtime consumer loads them)" : redisTroubleText(err);
    return { status: 503, body: { error: `${text}, retry later` }, headers: { 'Retry-After': String(REDIS_RETRY_AFTER_S) } };
  }
  return { status: 500, body: { error: 'internal error' }, headers: {} };
}

/**
 * The 503 of a read refused by its staleness bound (`max_lag_ms`): the lag, the bound, and
 * Retry-After the seconds the backlog is over it (at least 1).
 */
export function staleResponse(err: StaleProfileError): { status: number; body: Record<string, unknown>; headers: Record<string, string> } {
  const over = err.lagMs === null ? 1000 : err.lagMs - err.maxLagMs;
  return {
    status: 503,
    body: { error: `stale: ${err.message}`, user_id: err.userId, lag_ms: err.lagMs, max_lag_ms: err.maxLagMs },
    headers: { 'Retry-After': String(Math.max(1, Math.ceil(over / 1000))) },
  };
}

/**
 * Logs a request's failure: Redis trouble once per outage (`outage`), anything else (a bug)
 * with its stack but never the failed command's arguments (the logger's serializer drops them).
 */
export function logFailure(log: Logger, outage: OutageLog, redis: RedisClient, err: unknown, detail: Record<string, unknown>): void {
  if (redisAtFault(redis, err)) outage.failed(err, detail);
  else log.error({ ...detail, err }, 'request failed');
}

/**
 * Request log: method, path, status and time, never bodies. The bidder's hot routes
 * (`quiet`) log at debug, the rest at info.
 */
export function requestLog(log: Logger, quiet: readonly RouteKey[]): RequestHandler {
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const entry = { method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 };
      const served = matchRoute(req.method, req.path);
      if (served && quiet.includes(served.key)) log.debug(entry, 'request');
      else log.info(entry, 'request');
    });
    next();
  };
}

/** The answer for a path no route serves. */
export const notFound: RequestHandler = (_req: Request, res: Response) => {
  res.status(404).json({ error: 'no such route' });
};

/**
 * Body-parser errors carry a status (400 bad JSON, 413 too large); anything else is Redis
 * or a bug: 503 when Redis is unreachable, 500 otherwise, never a stack trace.
 */
export function errorHandler(redis: RedisClient, log: Logger, outage: OutageLog): ErrorRequestHandler {
  return (err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    if (isClientError(err)) {
      if (err.status === 413) res.set('Connection', 'close'); // the rest of the body is never read
      const message = err.type === 'entity.parse.failed' ? 'body is not valid JSON' : err.message;
      res.status(err.status).json({ errors: [{ index: 0, field: '', message }] });
      return;
    }
    logFailure(log, outage, redis, err, { method: req.method, path: req.path });
    const { status, body, headers } = failureResponse(redis, err);
    res.set(headers).status(status).json(body);
  };
}

/** An error that blames the request (a body parser's 4xx), as opposed to Redis or a bug. */
export function isClientError(err: unknown): err is Error & { status: number; type?: string } {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 500;
}
