import express, { Request, Response, Router } from 'express';
import type { ApiContext } from '../context';
import { dashboardPage, dashboardStats } from '../dashboard';
import { route } from '../routeTable';

// The page is one inline file: its own scripts and styles, and calls back to this origin only.
const PAGE_CSP =
  "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'";

/** The dashboard: GET / (the page; public, it holds no data) and GET /dashboard/stats (what it polls). */
export function dashboardRouter(api: ApiContext): Router {
  const router = express.Router();

  route(router, 'GET /', (_req: Request, res: Response) => {
    res.set('Content-Security-Policy', PAGE_CSP);
    res.type('html').send(dashboardPage());
  });

  route(router, 'GET /dashboard/stats', async (_req: Request, res: Response) => {
    res.json(await dashboardStats(api.redis, api.keys, api.partitions, api.activity, api.odsDir, api.triggers, api.reader.partitionLags()));
  });
  return router;
}
