import express, { NextFunction, Request, RequestHandler, Response, Router } from 'express';
import { bodyToItems } from '../parseBody';
import type { IngestOutcome } from '../../metrics/metrics';
import type { ApiContext } from '../context';
import { isClientError, jsonBody } from '../http';
import { route } from '../routeTable';
import { IngestOptions, WAIT_APPLIED_MAX_MS } from '../../producer/producer';

const NDJSON = 'application/x-ndjson';
const EMPTY_BODY = 'empty body: send one event object, a JSON array of events, or NDJSON lines';

/** POST /events: ingestion, one object, a JSON array or NDJSON lines; every request's outcome is counted. */
export function eventsRouter(api: ApiContext): Router {
  const router = express.Router();
  const outcome = (o: IngestOutcome) => api.metrics.ingestRequests.inc({ outcome: o });
  route(router, 'POST /events', eventBody(api, outcome), async (req: Request, res: Response) => {
    const wait = waitParams(req.query);
    if ('error' in wait) {
      outcome('bad_body');
      res.status(400).json({ errors: [{ index: 0, field: '', message: wait.error }] });
      return;
    }
    const parsed = bodyToItems(req.body, Boolean(req.is(NDJSON)), api.maxEventsPerRequest);
    if (!parsed.ok) {
      outcome(parsed.status === 413 ? 'too_large' : 'bad_body');
      res.status(parsed.status).json({ errors: parsed.errors });
      return;
    }
    let result;
    try {
      result = await api.producer.ingest(parsed.items, wait);
    } catch (err) {
      outcome('redis_unavailable');
      api.metrics.eventsRejected.inc({ reason: 'redis_unavailable' }, parsed.items.length);
      throw err;
    }
    if (!result.ok && 'backlogged' in result) {
      outcome('backlog');
      api.metrics.eventsRejected.inc({ reason: 'backlog' }, parsed.items.length);
      res.set('Retry-After', String(result.retryAfterS));
      res.status(503).json({ error: 'backlog over the bound: retry later', partitions: result.backlogged });
      return;
    }
    if (!result.ok) {
      outcome('invalid');
      api.metrics.eventsRejected.inc({ reason: 'invalid' }, parsed.items.length);
      res.status(400).json({ errors: result.errors });
      return;
    }
    outcome('accepted');
    api.metrics.eventsAccepted.inc(result.accepted);
    api.activity.record((parsed.items as { user_id: string }[]).map((e) => e.user_id));
    res.status(202).json({ accepted: result.accepted, event_ids: result.event_ids, ...(wait.waitApplied ? { applied: result.applied } : {}) });
  });
  return router;
}

/**
 * `?wait=applied` (answer once the realtime path applied every event, or at the timeout with
 * `applied: false`) and `&timeout_ms=` (0 to WAIT_APPLIED_MAX_MS; default
 * WAIT_APPLIED_DEFAULT_MS), or what is wrong with them.
 */
export function waitParams(query: Request['query']): IngestOptions | { error: string } {
  const { wait, timeout_ms: timeout } = query;
  if (wait === undefined) {
    return timeout === undefined ? {} : { error: 'timeout_ms needs wait=applied' };
  }
  if (wait !== 'applied') return { error: 'wait must be "applied" (answer once the realtime path applied the events), given once' };
  if (timeout === undefined) return { waitApplied: true };
  const ms = typeof timeout === 'string' && /^\d{1,6}$/.test(timeout) ? Number(timeout) : NaN;
  if (!(ms <= WAIT_APPLIED_MAX_MS)) return { error: `timeout_ms must be a whole number of milliseconds from 0 to ${WAIT_APPLIED_MAX_MS}` };
  return { waitApplied: true, timeoutMs: ms };
}

/**
 * Reads the body by its Content-Type (JSON or NDJSON; 415 otherwise). A body that cannot
 * be read (bad JSON, too large) is counted here and answered by the app's error handler.
 */
function eventBody(api: ApiContext, outcome: (o: IngestOutcome) => void): RequestHandler {
  const json = jsonBody(api.maxBodyBytes);
  const ndjson = express.text({ type: NDJSON, limit: api.maxBodyBytes });
  return (req: Request, res: Response, next: NextFunction) => {
    // Without a body req.is() knows no type (and body-parser would read `{}`): say what is wrong.
    const length = req.headers['content-length'];
    if (req.headers['transfer-encoding'] === undefined && (length === undefined || Number(length) === 0)) {
      outcome('bad_body');
      res.status(400).json({ errors: [{ index: 0, field: '', message: EMPTY_BODY }] });
      return;
    }
    const parser = req.is(NDJSON) ? ndjson : req.is('application/json') ? json : null;
    if (!parser) {
      outcome('unsupported_type');
      res.status(415).json({ error: `Content-Type must be application/json or ${NDJSON}` });
      return;
    }
    parser(req, res, (err?: unknown) => {
      if (isClientError(err)) outcome(err.status === 413 ? 'too_large' : 'bad_body');
      next(err);
    });
  };
}
