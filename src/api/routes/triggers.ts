import express, { Request, Response, Router } from 'express';
import { NAME } from '../../core/tags';
import { FiringReader } from '../../profile/triggers';
import type { FiringSubscription } from '../firingHub';
import type { ApiContext } from '../context';
import { route } from '../routeTable';

/** How long a stream waits for firings before it sends a keep-alive comment (ms). */
const BLOCK_MS = 15_000;

/** Bytes a client may leave unread before its stream is closed (AppOptions.eventStreamBufferBytes). */
const DEFAULT_BUFFER_BYTES = 1 << 20;

/** Retry-After (s) of the 503 when every event stream slot is taken. */
const FULL_RETRY_AFTER_S = 5;

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
      res
        .status(400)
        .json({ error: `Last-Event-ID must be a cursor this stream sent: ${api.partitions} stream ids (ms-seq, each part below 2^64), comma-separated` });
      return;
    }
    // Listen for the client leaving before anything is awaited: one that leaves while its
    // subscription opens must still leave the hub.
    let open = true;
    let sub: FiringSubscription | null | undefined;
    res.on('close', () => {
      open = false;
      sub?.close();
    });
    sub = await api.firings.subscribe(cursor);
    if (sub === null) {
      res.set('Retry-After', String(FULL_RETRY_AFTER_S));
      res.status(503).json({ error: `too many event streams (${api.firings.maxStreams} open): retry later` });
      return;
    }
    if (!open) {
      sub.close();
      return;
    }
    const maxUnsent = api.eventStreamBufferBytes ?? DEFAULT_BUFFER_BYTES;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 1000\n: cursor ${sub.cursor()}\n\n`);
    while (open) {
      let firings;
      try {
        firings = await sub.next(BLOCK_MS);
      } catch (err) {
        if (open) api.log.info({ err: (err as Error).message }, 'event stream closed; the client resumes with Last-Event-ID');
        break;
      }
      if (firings.length === 0) res.write(': keep-alive\n\n');
      for (const f of firings) {
        if (name !== undefined && f.trigger !== name) continue;
        const { cursor: id, ...firing } = f;
        res.write(`id: ${id}\nevent: ${f.trigger}\ndata: ${JSON.stringify(firing)}\n\n`);
      }
      if (res.writableLength > maxUnsent) {
        // A client that does not read: close rather than buffer without limit. Nothing is
        // lost: it reconnects with the last id it did read and gets the rest.
        api.log.info({ unsentBytes: res.writableLength }, 'event stream closed: the client reads too slowly; it resumes with Last-Event-ID');
        res.destroy();
        break;
      }
    }
    sub.close();
    res.end();
  });
  return router;
}
