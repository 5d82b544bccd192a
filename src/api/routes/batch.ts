import express, { NextFunction, Request, Response, Router } from 'express';
import { RUN_ID } from '../../batch/registry';
import { displayName, parseIsoTime } from '../../core/event';
import { ODS_DATE } from '../../ods/files';
import type { BatchRequest } from '../../batch/launcher';
import type { ApiContext } from '../context';
import { jsonBody } from '../http';
import { route } from '../routeTable';

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
    if (b[f] !== undefined && (typeof b[f] !== 'string' || !ODS_DATE.test(b[f] as string))) return `${f} must be a date YYYY-MM-DD`;
  }
  if (b.windows !== undefined && typeof b.windows !== 'boolean') return 'windows must be true or false';
  return { asOf, from: b.from as string | undefined, to: b.to as string | undefined, windows: b.windows as boolean | undefined };
}

/** POST /batch (alias POST /collect/batch) starts a run in a child process; GET /batch/:runId reports one. */
export function batchRouter(api: ApiContext): Router {
  const router = express.Router();
  const json = jsonBody(api.maxBodyBytes);

  // The body is optional: an empty POST runs with the defaults.
  const optionalJson = (req: Request, res: Response, next: NextFunction) => {
    if (req.headers['content-length'] === '0' || !req.headers['content-type']) return next();
    if (req.is('application/json')) return json(req, res, next);
    res.status(415).json({ error: 'Content-Type must be application/json' });
  };

  const startRun = async (req: Request, res: Response) => {
    if (!api.batch) {
      res.status(503).json({ error: 'batch runs are not enabled on this server' });
      return;
    }
    const request = batchRequest(req.body, Date.now());
    if (typeof request === 'string') {
      res.status(400).json({ error: request });
      return;
    }
    const runId = await api.batch.launch(request);
    if (runId === null) {
      res.status(409).json({ error: 'a batch run is in progress', run_id: await api.redis.get(api.keys.batchLock()) });
      return;
    }
    res.status(202).json({ run_id: runId });
  };
  route(router, 'POST /batch', optionalJson, startRun);
  // Clients of the system this one replaces trigger the batch here: an alias, same body and answers.
  route(router, 'POST /collect/batch', optionalJson, startRun);

  route(router, 'GET /batch/:runId', async (req: Request, res: Response) => {
    const runId = req.params.runId as string;
    if (!RUN_ID.test(runId)) {
      res.status(400).json({ error: 'run id must look like 20260101T000000Z-0a1b2c' });
      return;
    }
    const status = api.batch ? await api.batch.status(runId) : null;
    if (!status) {
      res.status(404).json({ error: 'unknown batch run', run_id: runId });
      return;
    }
    res.json(status);
  });
  return router;
}
