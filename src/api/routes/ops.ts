import express, { Request, Response, Router } from 'express';
import { streamStatus } from '../../redis/streamGroups';
import type { ApiContext } from '../context';
import { openApiDocument } from '../openapi';
import { checkReady } from '../ready';
import { route } from '../routeTable';

/** What operators and orchestrators call: GET /status, /health, /ready, /metrics and /openapi.json. */
export function opsRouter(api: ApiContext): Router {
  const router = express.Router();

  route(router, 'GET /status', async (_req: Request, res: Response) => {
    res.json({ partitions: await streamStatus(api.redis, api.keys, api.partitions) });
  });

  // Liveness only: a Redis outage must not get a healthy process restarted.
  route(router, 'GET /health', (_req: Request, res: Response) => {
    res.json({ status: 'ok' });
  });

  route(router, 'GET /ready', async (_req: Request, res: Response) => {
    const ready = await checkReady(api.redis, api.keys, api.partitions);
    res.status(ready.ready ? 200 : 503).json(ready);
  });

  route(router, 'GET /metrics', async (_req: Request, res: Response) => {
    res.type(api.metrics.contentType).send(await api.metrics.text());
  });

  route(router, 'GET /openapi.json', (_req: Request, res: Response) => {
    res.json(openApiDocument);
  });
  return router;
}
