import express, { Request, Response, Router } from 'express';
import { NAME } from '../../core/tags';
import { FiringReader } from '../../profile/triggers';
import type { ApiContext } from '../context';
import { route } from '../routeTable';

/** How long one blocking read waits before the stream sends a keep-alive comment (ms). */
const BLOCK_MS = 15_000;

/**
 * GET /triggers/stream: trigger firings as Server-Sent Events, one event per firing (event
 * name: the trigger; data: the firing as JSON). Each event's `id:` is the cursor after it
 * (one stream id per partition), so a client that reconnects with Last-Event-ID resumes
 * without loss; without one it starts at the newest firing. `?name=` keeps one trigger.
 */
export function triggersRouter(api: ApiContext): Router {
  const router = express.Router();
  route(router, 'GET /triggers/stream', async (req: Request, res: Response) => {
    const name = typeof req.query.name === 'string' ? req.query.name : undefined;
    if (req.query.name !== undefined && (name === undefined || !NAME.test(name))) {
      res.status(400).json({ error: 'name must be a trigger name ([a-z][a-z0-9_]*)' });
      return;
    }
    if (name !== undefined && !(api.triggers ?? []).some((t) => t.name === name)) {
      // A stream that could never send an event would only hang there.
      const known = (api.triggers ?? []).map((t) => t.name);
      res.status(400).json({ error: `no trigger named ${name} in the tag config (${known.length ? `triggers: ${known.join(', ')}` : 'it has no triggers'})` });
      return;
    }
    const last = req.get('last-event-id') ?? (typeof req.query.last_event_id === 'string' ? req.query.last_event_id : undefined);
    const cursor = last === undefined ? undefined : FiringReader.parseCursor(last, api.partitions);
    if (cursor === null) {
      res.status(400).json({ error: `Last-Event-ID must be a cursor this stream sent: ${api.partitions} stream ids (ms-seq, each part below 2^64), comma-separated` });
      return;
    }
    // Listen for the client leaving before anything is awaited: one that leaves while the
    // reader opens must still free the reader's connections.
    let open = true;
    let reader: FiringReader | undefined;
    res.on('close', () => {
      open = false;
      reader?.close();
    });
    reader = await FiringReader.open(api.redis, api.keys, api.partitions, cursor);
    if (!open) {
      reader.close();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(`retry: 1000\n: cursor ${reader.cursor()}\n\n`);
    while (open) {
      let firings;
      try {
        firings = await reader.next(BLOCK_MS);
      } catch (err) {
        if (open) api.log.warn({ err }, 'trigger stream read failed; closing the event stream');
        break;
      }
      if (firings.length === 0) res.write(': keep-alive\n\n');
      for (const f of firings) {
        if (name !== undefined && f.trigger !== name) continue;
        const { cursor: id, ...firing } = f;
        res.write(`id: ${id}\nevent: ${f.trigger}\ndata: ${JSON.stringify(firing)}\n\n`);
      }
    }
    reader.close();
    res.end();
  });
  return router;
}
