import express, { Express } from 'express';
import type { RequestListener } from 'http';
import { AppOptions, ApiContext, apiContext } from './context';
import { errorHandler, notFound, requestLog } from './http';
import { withSecurity } from './security';
import { batchRouter } from './routes/batch';
import { dashboardRouter } from './routes/dashboard';
import { eventsRouter } from './routes/events';
import { opsRouter } from './routes/ops';
import { profilesRouter, withFastProfileRoute } from './routes/profiles';
import { triggersRouter } from './routes/triggers';

export type { AppOptions } from './context';

/**
 * The HTTP API: ingestion, fused profile reads, batch runs, status, health and the
 * dashboard. Returns the request listener: the security guard (headers, size, keys and
 * roles, rate limit), then GET /profile/:id on a lean node:http path, everything else
 * express.
 */
export function createApp(opts: AppOptions): RequestListener {
  return createApi(opts).listener;
}

/**
 * The API's request listener and the context its routes read: a switch of the active tag
 * config sets the context's windowTags and triggers (and the reader's tags).
 */
export function createApi(opts: AppOptions): { listener: RequestListener; context: ApiContext } {
  const api = apiContext(opts);
  const listener = withSecurity(withFastProfileRoute(expressApp(api), api), {
    keys: opts.apiKeys ?? [],
    rateLimitPerS: opts.rateLimitPerS ?? 0,
    maxBodyBytes: opts.maxBodyBytes,
  });
  return { listener, context: api };
}

/** The express part of the API: one router per resource, then the 404 and error answers. */
export function expressApp(api: ApiContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('json spaces', 0);
  // GET /profile never gets here (it is served before express); POST /events is the other hot route.
  // The bidder's ingest and the dashboard's polls (every second or two) log at debug.
  app.use(requestLog(api.log, ['POST /events', 'GET /dashboard/stats', 'GET /profile/:userId/timeline', 'GET /batch/:runId']));
  app.use(eventsRouter(api), profilesRouter(api), batchRouter(api), opsRouter(api), dashboardRouter(api), triggersRouter(api));
  app.use(notFound);
  app.use(errorHandler(api.redis, api.log, api.redisOutage));
  return app;
}
