import express, { NextFunction, Request, Response } from 'express';
import type { RedisClient } from '../redis/client';
import { ID_PATTERN, ID_RULE, displayName, parseIsoTime } from '../core/event';
import { Keys } from '../core/keys';
import { Logger, silentLogger } from '../core/logger';
import { ProfileReader } from '../profile/reader';
import { Producer } from '../producer/producer';
import { bodyToItems } from '../producer/parseBody';
import { streamStatus } from '../redis/streamStatus';
import { BatchLauncher, BatchRequest } from '../batch/launcher';
import { failureResponse, withFastProfileRoute } from './routes/profiles';
import { checkReady } from './ready';
import { openApiDocument } from './openapi';
import { IngestOutcome, Metrics } from '../ops/metrics';
import { withSecurity } from './security';
import type { ApiKey } from '../core/apiKeys';
import { eraseUser } from '../profile/erasure';
import { ActivityTracker, dashboardPage, dashboardStats, profileTimeline } from './dashboard';
import { WindowTag } from '../core/tags';
import type { RequestListener } from 'http';

export interface AppOptions {
  redis: RedisClient;
  producer: Producer;
  reader: ProfileReader;
  keys: Keys;
  partitions: number;
  maxEventsPerRequest: number;
  maxProfilesPerRequest: number;
  maxBodyBytes: number;
  /** Starts batch runs (POST /batch); the batch routes answer 503 without it. */
  batch?: BatchLauncher;
  logger?: Logger;
  /** Served at GET /metrics and fed by the routes; a private one when absent. */
  metrics?: Metrics;
  /** API keys and their roles; none: every route is open (the server then warns at start). */
  apiKeys?: readonly ApiKey[];
  /** Requests per second per key (or address); 0 or absent: no limit. */
  rateLimitPerS?: number;
  /**
   * Connection for writes on behalf of an admin (erasure, the batch lock and run registry);
   * `redis` when absent. With Redis ACLs the API reads as the `api` user and writes these as
   * the `batch` user.
   */
  adminRedis?: RedisClient;
  /** Window tags, for the dashboard's per-tag timelines. */
  windowTags?: readonly WindowTag[];
  /** ODS directory, for the dashboard's archive size (when this process can see it). */
  odsDir?: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const RUN_ID = /^\d{8}T\d{6}Z-[0-9a-f]{6}$/;

/** Validates a POST /batch body; returns the request or an error message. */
function batchRequest(body: unknown, now: number): BatchRequest | string {
  const b = (body ?? {}) as Record<string, unknown>;
  if (typeof b !== 'object' || Array.isArray(b)) return 'body must be a JSON object';
  for (const key of Object.keys(b)) if (!['as_of', 'from', 'to', 'windows'].includes(key)) return `unknown field "${displayName(key)}"`;
  let asOf = now;
  if (b.as_of !== undefined) {
    asOf = typeof b.as_of === 'number' ? b.as_of : typeof b.as_of === 'string' ? parseIsoTime(b.as_of) : NaN;
    if (!Number.isSafeInteger(asOf) || asOf < 0) return 'as_of must be epoch ms or an ISO-8601 date-time';
  }
  for (const f of ['from', 'to'] as const) {
    if (b[f] !== undefined && (typeof b[f] !== 'string' || !DATE.test(b[f] as string))) return `${f} must be a date YYYY-MM-DD`;
  }
  if (b.windows !== undefined && typeof b.windows !== 'boolean') return 'windows must be true or false';
  return { asOf, from: b.from as string | undefined, to: b.to as string | undefined, windows: b.windows as boolean | undefined };
}

const NDJSON = 'application/x-ndjson';

/** The route's `:userId`, or null once a 400 naming the id rule has been sent. */
function userIdParam(req: Request, res: Response): string | null {
  const userId = req.params.userId as string;
  if (ID_PATTERN.test(userId)) return userId;
  res.status(400).json({ error: `user id must be ${ID_RULE}` });
  return null;
}

/**
 * The HTTP API: ingestion, fused profile reads, batch runs, status and health. Returns the
 * request listener: GET /profile/:id on a lean node:http path, everything else express.
 */
export function createApp(opts: AppOptions): RequestListener {
  const log = (opts.logger ?? silentLogger).child({ component: 'api' });
  const metrics = opts.metrics ?? new Metrics({ redis: opts.redis, keys: opts.keys, partitions: opts.partitions, processMetrics: false });
  const ingestOutcome = (outcome: IngestOutcome) => metrics.ingestRequests.inc({ outcome });
  const activity = new ActivityTracker();
  const app = express();
  app.disable('x-powered-by');
  app.set('json spaces', 0);

  // Request log: method, path, status and time, never bodies. The bidder's hot paths
  // (POST /events; GET /profile is served before express) log at debug, the rest at info.
  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const entry = { method: req.method, path: req.path, status: res.statusCode, ms: Number(process.hrtime.bigint() - started) / 1e6 };
      if (req.method === 'POST' && req.path === '/events') log.debug(entry, 'request');
      else log.info(entry, 'request');
    });
    next();
  });

  const jsonBody = express.json({ limit: opts.maxBodyBytes, strict: false });
  const ndjsonBody = express.text({ type: NDJSON, limit: opts.maxBodyBytes });

  app.post('/events', (req, res, next) => {
    if (req.is(NDJSON)) return ndjsonBody(req, res, next);
    if (req.is('application/json')) return jsonBody(req, res, next);
    ingestOutcome('unsupported_type');
    res.status(415).json({ error: `Content-Type must be application/json or ${NDJSON}` });
  }, async (req: Request, res: Response) => {
    const parsed = bodyToItems(req.body, Boolean(req.is(NDJSON)), opts.maxEventsPerRequest);
    if (!parsed.ok) {
      ingestOutcome(parsed.status === 413 ? 'too_large' : 'bad_body');
      res.status(parsed.status).json({ errors: parsed.errors });
      return;
    }
    let result;
    try {
      result = await opts.producer.ingest(parsed.items);
    } catch (err) {
      ingestOutcome('redis_unavailable');
      metrics.eventsRejected.inc({ reason: 'redis_unavailable' }, parsed.items.length);
      throw err;
    }
    if (!result.ok && 'backlogged' in result) {
      ingestOutcome('backlog');
      metrics.eventsRejected.inc({ reason: 'backlog' }, parsed.items.length);
      res.set('Retry-After', String(result.retryAfterS));
      res.status(503).json({ error: 'backlog over the bound: retry later', partitions: result.backlogged });
      return;
    }
    if (!result.ok) {
      ingestOutcome('invalid');
      metrics.eventsRejected.inc({ reason: 'invalid' }, parsed.items.length);
      res.status(400).json({ errors: result.errors });
      return;
    }
    ingestOutcome('accepted');
    metrics.eventsAccepted.inc(result.accepted);
    activity.record((parsed.items as { user_id: string }[]).map((e) => e.user_id));
    res.status(202).json({ accepted: result.accepted, event_ids: result.event_ids });
  });

  app.get('/profile/:userId', async (req: Request, res: Response) => {
    const userId = userIdParam(req, res);
    if (userId === null) return;
    const profile = await opts.reader.read(userId);
    if (!profile) {
      res.status(404).json({ error: 'unknown user', user_id: userId });
      return;
    }
    res.json(profile);
  });

  app.post('/profiles', jsonBody, async (req: Request, res: Response) => {
    const ids = (req.body as { user_ids?: unknown } | undefined)?.user_ids;
    const max = opts.maxProfilesPerRequest;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > max) {
      res.status(400).json({ error: `body must be { "user_ids": [...] } with 1 to ${max} ids` });
      return;
    }
    const bad = ids.findIndex((id) => typeof id !== 'string' || !ID_PATTERN.test(id));
    if (bad >= 0) {
      res.status(400).json({ error: `user_ids[${bad}] must be ${ID_RULE}` });
      return;
    }
    const timer = metrics.profileReadSeconds.startTimer({ kind: 'batch' });
    const profiles = await opts.reader.readMany(ids as string[]);
    timer();
    res.json({ profiles: profiles.map((p, i) => p ?? { user_id: ids[i], error: 'unknown user' }) });
  });

  app.delete('/profile/:userId', async (req: Request, res: Response) => {
    const userId = userIdParam(req, res);
    if (userId === null) return;
    const erasedAt = Date.now();
    const deleted = await eraseUser(opts.adminRedis ?? opts.redis, opts.keys, userId, erasedAt);
    log.info({ erased_at: erasedAt, keys_deleted: deleted }, 'user erased'); // the id itself is personal data: not logged
    res.json({ user_id: userId, erased_at: erasedAt, keys_deleted: deleted });
  });

  app.post('/batch', (req, res, next) => {
    if (req.headers['content-length'] === '0' || !req.headers['content-type']) return next();
    if (req.is('application/json')) return jsonBody(req, res, next);
    res.status(415).json({ error: 'Content-Type must be application/json' });
  }, async (req: Request, res: Response) => {
    if (!opts.batch) {
      res.status(503).json({ error: 'batch runs are not enabled on this server' });
      return;
    }
    const request = batchRequest(req.body, Date.now());
    if (typeof request === 'string') {
      res.status(400).json({ error: request });
      return;
    }
    const runId = await opts.batch.launch(request);
    if (runId === null) {
      res.status(409).json({ error: 'a batch run is in progress', run_id: await opts.redis.get(opts.keys.batchLock()) });
      return;
    }
    res.status(202).json({ run_id: runId });
  });

  app.get('/batch/:runId', async (req: Request, res: Response) => {
    const runId = req.params.runId as string;
    if (!RUN_ID.test(runId)) {
      res.status(400).json({ error: 'run id must look like 20260101T000000Z-0a1b2c' });
      return;
    }
    const status = opts.batch ? await opts.batch.status(runId) : null;
    if (!status) {
      res.status(404).json({ error: 'unknown batch run', run_id: runId });
      return;
    }
    res.json(status);
  });

  app.get('/status', async (_req: Request, res: Response) => {
    res.json({ partitions: await streamStatus(opts.redis, opts.keys, opts.partitions) });
  });

  // The dashboard: a static page (public: it holds no data) and the calls it makes.
  app.get('/', (_req: Request, res: Response) => {
    res.set('Content-Security-Policy', "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'");
    res.type('html').send(dashboardPage());
  });

  app.get('/dashboard/stats', async (_req: Request, res: Response) => {
    res.json(await dashboardStats(opts.redis, opts.keys, opts.partitions, activity, opts.odsDir));
  });

  app.get('/profile/:userId/timeline', async (req: Request, res: Response) => {
    const userId = userIdParam(req, res);
    if (userId === null) return;
    res.json(await profileTimeline(opts.redis, opts.keys, opts.windowTags ?? [], userId, Date.now()));
  });

  app.get('/health', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });

  app.get('/ready', async (_req: Request, res: Response) => {
    const ready = await checkReady(opts.redis, opts.keys, opts.partitions);
    res.status(ready.ready ? 200 : 503).json(ready);
  });

  app.get('/metrics', async (_req: Request, res: Response) => {
    res.type(metrics.contentType).send(await metrics.text());
  });

  app.get('/openapi.json', (_req: Request, res: Response) => {
    res.json(openApiDocument);
  });

  app.use((_req: Request, res: Response) => {
    res.status(404).json({ error: 'no such route' });
  });

  // Body-parser errors carry a status (400 bad JSON, 413 too large); anything else is
  // Redis or a bug: 503 when Redis is unreachable, 500 otherwise, never a stack trace.
  app.use((err: Error & { status?: number; type?: string }, req: Request, res: Response, _next: NextFunction) => {
    if (err.status && err.status >= 400 && err.status < 500) {
      if (req.method === 'POST' && req.path === '/events') ingestOutcome(err.status === 413 ? 'too_large' : 'bad_body');
      if (err.status === 413) res.set('Connection', 'close'); // the rest of the body is never read
      const message = err.type === 'entity.parse.failed' ? 'body is not valid JSON' : err.message;
      res.status(err.status).json({ errors: [{ index: 0, field: '', message }] });
      return;
    }
    log.error({ err, method: req.method, url: req.originalUrl }, 'request failed');
    const { status, body } = failureResponse(opts.redis);
    res.status(status).json(body);
  });
  return withSecurity(withFastProfileRoute(app, opts.reader, opts.redis, log, metrics), {
    keys: opts.apiKeys ?? [], rateLimitPerS: opts.rateLimitPerS ?? 0, maxBodyBytes: opts.maxBodyBytes,
  });
}
