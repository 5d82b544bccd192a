import { PACKAGE_VERSION } from '../core/version';
import { NAME } from '../core/tags';
import { ODS_DATE } from '../ods/files';
import { ID, SCHEMAS, ref } from './openapiSchemas';
import { ROUTES, RouteKey } from './routeTable';
import { WAIT_APPLIED_DEFAULT_MS, WAIT_APPLIED_MAX_MS } from '../producer/producer';

const json = (schema: unknown) => ({ 'application/json': { schema } });
const response = (description: string, schema: unknown, headers?: Record<string, unknown>) => ({
  description,
  content: json(schema),
  ...(headers ? { headers } : {}),
});
const error = (description: string) => response(description, ref('Error'));
/** 503 on Redis trouble (unreachable, out of memory, loading): always with Retry-After. */
const RETRY_AFTER = { 'Retry-After': { description: 'seconds to wait before retrying', schema: { type: 'string' } } };
const unavailable = (description = 'Redis unavailable or out of memory; retry after Retry-After seconds') => response(description, ref('Error'), RETRY_AFTER);

/** POST /batch, and its alias POST /collect/batch. */
const startBatchRun = {
  operationId: 'startBatchRun',
  summary: 'Start a batch run (ODS replay into offline tags) in a child process',
  requestBody: {
    required: false,
    content: json({
      type: 'object',
      additionalProperties: false,
      properties: {
        as_of: {
          oneOf: [
            { type: 'integer', minimum: 0 },
            { type: 'string', format: 'date-time' },
          ],
        },
        from: { type: 'string', pattern: ODS_DATE.source },
        to: { type: 'string', pattern: ODS_DATE.source },
        windows: { type: 'boolean' },
      },
    }),
  },
  responses: {
    202: response('Started', { type: 'object', required: ['run_id'], additionalProperties: false, properties: { run_id: ref('RunId') } }),
    400: error('Invalid body'),
    409: response('Another run holds the lock', {
      type: 'object',
      required: ['error'],
      additionalProperties: false,
      properties: { error: { type: 'string' }, run_id: { type: ['string', 'null'] } },
    }),
    415: error('Content-Type is not application/json'),
    503: error('Batch runs are not enabled on this server, or Redis unavailable or out of memory (then with Retry-After)'),
  },
};

/**
 * The OpenAPI 3.1 description of every route, served at GET /openapi.json. Schemas are
 * JSON Schema 2020-12; test/functional/api/openapi.test.ts validates real responses against
 * them, so this document cannot drift from the code unnoticed.
 */
const document = {
  openapi: '3.1.0',
  info: {
    title: 'profile-stream',
    version: PACKAGE_VERSION,
    description: 'Redis-native user profiles for ad platforms: events in over HTTP, sliding-window and offline tags out, one Redis round trip per profile.',
    license: { name: 'MIT', identifier: 'MIT' },
  },
  // Relative: the API itself serves this document, so its origin is the server.
  servers: [{ url: '/', description: 'the server this document is served from' }],
  paths: {
    '/events': {
      post: {
        operationId: 'ingestEvents',
        summary: 'Ingest events: one object, a JSON array, or NDJSON lines',
        description:
          'Every item is validated; if any is invalid nothing is written and every error is returned. Accepted events are in Redis when the 202 is sent. With wait=applied, the 202 waits until the realtime path applied them (then any read sees them) or timeout_ms passed (applied: false; they are still applied, once).',
        parameters: [
          {
            name: 'wait',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['applied'] },
            description:
              'applied: answer once the realtime consumers have applied every event of the request to the windows, or at timeout_ms with applied: false',
          },
          {
            name: 'timeout_ms',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: 0, maximum: WAIT_APPLIED_MAX_MS, default: WAIT_APPLIED_DEFAULT_MS },
            description: 'With wait=applied: how long to wait (ms)',
          },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: { oneOf: [ref('Event'), { type: 'array', items: ref('Event') }] } },
            'application/x-ndjson': { schema: { type: 'string', description: 'one Event per line' } },
          },
        },
        responses: {
          202: response('Written to the streams', {
            type: 'object',
            required: ['accepted', 'event_ids'],
            additionalProperties: false,
            properties: {
              accepted: { type: 'integer', minimum: 1 },
              event_ids: { type: 'array', items: ID },
              applied: { type: 'boolean', description: 'With wait=applied only: true when every event was applied to the windows before timeout_ms' },
            },
          }),
          400: response('Invalid body or events, or a bad wait or timeout_ms; nothing was written', ref('FieldErrors')),
          415: error('Content-Type is not application/json or application/x-ndjson'),
          503: response(
            'Backlog over the bound, or Redis unavailable or out of memory; resend the same events after Retry-After seconds',
            {
              type: 'object',
              required: ['error'],
              additionalProperties: false,
              properties: { error: { type: 'string' }, partitions: { type: 'array', items: { type: 'integer' } } },
            },
            RETRY_AFTER,
          ),
        },
      },
    },
    '/profile/{userId}': {
      get: {
        operationId: 'getProfile',
        summary: "A user's fused profile: window tags computed now, offline tags and segment",
        description:
          'Without `view`, the fused profile (Profile). With `view=flat`, the shape of the system this one replaces (FlatProfile): one flat object of strings, every realtime and offline tag, null tags left out, no user_id or meta.',
        parameters: [
          { name: 'userId', in: 'path', required: true, schema: ID },
          {
            name: 'view',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['flat'] },
            description: 'flat: every tag as a string in one flat object (FlatProfile); absent: the fused profile (Profile). Any other value is a 400.',
          },
          {
            name: 'tags',
            in: 'query',
            required: false,
            schema: { type: 'string', pattern: '^[^,]+(,[^,]+)*$', example: 'views_5m,clicks_24h' },
            description:
              'Only these tags (window and offline), separated by commas: only they are evaluated in Redis, and only they are answered (meta as always). Absent: every tag. A name the tag config does not have is a 400 naming it.',
          },
          {
            name: 'max_lag_ms',
            in: 'query',
            required: false,
            schema: { type: 'integer', minimum: 0 },
            description:
              "Refuse (503 Stale, with Retry-After) rather than answer when the realtime path is more than this many ms behind for the user's partition (meta.lag_ms), or its lag is not known: a bidder skips the user instead of bidding on a stale profile.",
          },
        ],
        responses: {
          200: response('The profile: fused (Profile), or flat (FlatProfile) with view=flat', { oneOf: [ref('Profile'), ref('FlatProfile')] }),
          400: error('Malformed user id, a view other than flat, tags that are empty or name an unknown tag, or a max_lag_ms that is not a whole number ≥ 0'),
          404: response('No key of this user exists', {
            type: 'object',
            required: ['error', 'user_id'],
            additionalProperties: false,
            properties: { error: { type: 'string' }, user_id: { type: 'string' } },
          }),
          503: response(
            'Redis unavailable or out of memory (Error), or the realtime path further behind than max_lag_ms (Stale); retry after Retry-After seconds',
            { anyOf: [ref('Error'), ref('Stale')] },
            RETRY_AFTER,
          ),
        },
      },
      delete: {
        operationId: 'eraseUser',
        summary: 'Erase a user (admin): delete every key now and skip their events in every later batch',
        parameters: [{ name: 'userId', in: 'path', required: true, schema: ID }],
        responses: {
          200: response('Erased (also when the user had no keys)', {
            type: 'object',
            required: ['user_id', 'erased_at', 'keys_deleted'],
            additionalProperties: false,
            properties: { user_id: { type: 'string' }, erased_at: { type: 'integer' }, keys_deleted: { type: 'integer', minimum: 0 } },
          }),
          400: error('Malformed user id'),
          503: unavailable(),
        },
      },
    },
    '/profiles': {
      post: {
        operationId: 'getProfiles',
        summary: 'Profiles of many users (one pipeline per Redis node)',
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['user_ids'],
            properties: {
              user_ids: { type: 'array', items: ID, minItems: 1 },
              tags: {
                type: 'array',
                items: { type: 'string', minLength: 1 },
                minItems: 1,
                description: 'Only these tags (window and offline) in every profile, as with GET /profile/{userId}?tags=. Absent: every tag.',
              },
              max_lag_ms: {
                type: 'integer',
                minimum: 0,
                description:
                  "As GET /profile/{userId}?max_lag_ms=, per user: a user whose partition is further behind is answered { user_id, error: 'stale', lag_ms }, unread.",
              },
            },
          }),
        },
        responses: {
          200: response('One entry per requested id, in order', {
            type: 'object',
            required: ['profiles'],
            additionalProperties: false,
            properties: {
              profiles: {
                type: 'array',
                items: {
                  oneOf: [
                    ref('Profile'),
                    {
                      type: 'object',
                      required: ['user_id', 'error'],
                      additionalProperties: false,
                      properties: { user_id: { type: 'string' }, error: { const: 'unknown user' } },
                    },
                    {
                      type: 'object',
                      required: ['user_id', 'error', 'lag_ms'],
                      additionalProperties: false,
                      properties: { user_id: { type: 'string' }, error: { const: 'stale' }, lag_ms: { type: ['integer', 'null'], minimum: 0 } },
                    },
                  ],
                },
              },
            },
          }),
          400: error(
            'Body is not { "user_ids": [...] } with valid ids, or too many ids, or its tags are empty or name an unknown tag, or its max_lag_ms is not a whole number ≥ 0',
          ),
          503: unavailable(),
        },
      },
    },
    '/batch': { post: startBatchRun },
    '/collect/batch': {
      post: {
        ...startBatchRun,
        operationId: 'collectBatch',
        summary: 'Alias of POST /batch (the batch trigger of the system this one replaces): the same run, body and answers',
      },
    },
    '/batch/{runId}': {
      get: {
        operationId: 'getBatchRun',
        summary: 'State and summary of a batch run',
        parameters: [{ name: 'runId', in: 'path', required: true, schema: ref('RunId') }],
        responses: {
          200: response('The run', ref('BatchRun')),
          400: error('Malformed run id'),
          404: response('Unknown run', {
            type: 'object',
            required: ['error', 'run_id'],
            additionalProperties: false,
            properties: { error: { type: 'string' }, run_id: { type: 'string' } },
          }),
        },
      },
    },
    '/status': {
      get: {
        operationId: 'getStatus',
        summary: 'Every stream partition: length, oldest and newest ids, consumer groups',
        responses: {
          200: response('Partitions', {
            type: 'object',
            required: ['partitions'],
            additionalProperties: false,
            properties: { partitions: { type: 'array', items: ref('PartitionStatus') } },
          }),
          503: unavailable(),
        },
      },
    },
    '/health': {
      get: {
        operationId: 'getHealth',
        summary: 'Liveness: the process is up (no Redis check)',
        responses: { 200: response('Up', { type: 'object', required: ['status'], additionalProperties: false, properties: { status: { const: 'ok' } } }) },
      },
    },
    '/ready': {
      get: {
        operationId: 'getReadiness',
        summary: 'Readiness: Redis reachable, scripts loaded, consumer groups present',
        responses: { 200: response('Ready', ref('Readiness')), 503: response('Not ready; the failing checks say why', ref('Readiness')) },
      },
    },
    '/metrics': {
      get: {
        operationId: 'getMetrics',
        summary: 'Prometheus metrics (text exposition format)',
        responses: { 200: { description: 'Metrics', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/': {
      get: {
        operationId: 'getDashboardPage',
        summary: 'The dashboard: a self-contained page (public; it asks for an API key when the server needs one)',
        responses: { 200: { description: 'HTML', content: { 'text/html': { schema: { type: 'string' } } } } },
      },
    },
    '/dashboard/stats': {
      get: {
        operationId: 'getDashboardStats',
        summary: "What the dashboard's pipeline view shows, in one call",
        responses: {
          200: response('Pipeline state', {
            type: 'object',
            required: ['at', 'partitions', 'realtime_lag_ms', 'dead_letters', 'ods', 'last_batch', 'top_users', 'triggers', 'tag_config'],
            additionalProperties: false,
            properties: {
              at: { type: 'integer' },
              partitions: { type: 'array', items: ref('PartitionStatus') },
              realtime_lag_ms: {
                type: 'array',
                items: { type: ['integer', 'null'], minimum: 0 },
                description:
                  'Per partition, in order: the age (ms) of the oldest event accepted and not yet applied to the windows, 0 when caught up; null when not known (meta.lag_ms of its users)',
              },
              dead_letters: { type: 'integer' },
              ods: {
                oneOf: [
                  { type: 'null' },
                  { type: 'object', required: ['files', 'bytes'], properties: { files: { type: 'integer' }, bytes: { type: 'integer' } } },
                ],
              },
              last_batch: { oneOf: [{ type: 'null' }, ref('BatchRun')] },
              top_users: {
                type: 'array',
                items: { type: 'object', required: ['user_id', 'events'], properties: { user_id: { type: 'string' }, events: { type: 'integer' } } },
              },
              triggers: {
                type: 'array',
                items: {
                  type: 'object',
                  required: ['name', 'recent'],
                  properties: { name: { type: 'string' }, recent: { type: 'array', items: ref('Firing') } },
                },
              },
              tag_config: {
                type: 'object',
                required: ['active', 'processes'],
                description: 'The active tag config version (null: none recorded yet) and the running processes with the version each runs',
                properties: {
                  active: {
                    oneOf: [
                      { type: 'null' },
                      {
                        type: 'object',
                        required: ['version', 'since'],
                        properties: { version: { type: 'string' }, since: { type: 'integer', description: 'epoch ms' } },
                      },
                    ],
                  },
                  pending: {
                    description: 'A tag config being backfilled by `profile tags apply` (null: none)',
                    oneOf: [
                      { type: 'null' },
                      {
                        type: 'object',
                        required: ['version', 'since', 'generation'],
                        properties: {
                          version: { type: 'string' },
                          since: { type: 'integer', description: 'epoch ms' },
                          generation: { type: 'integer', description: 'the generation of pane keys its window state is built in' },
                        },
                      },
                    ],
                  },
                  processes: {
                    type: 'array',
                    items: {
                      type: 'object',
                      required: ['id', 'roles', 'version', 'file', 'started_at', 'until'],
                      properties: {
                        id: { type: 'string', description: 'host:pid' },
                        roles: { type: 'array', items: { type: 'string', enum: ['api', 'realtime', 'archive'] } },
                        version: { type: 'string' },
                        file: { type: 'string', description: 'The tag file the process was started with' },
                        writes: {
                          type: 'array',
                          items: { type: 'string' },
                          description:
                            '`version@generation` of every tag config whose window state it writes, the active one first (a realtime consumer also writes a config being backfilled, and the previous one during its grace period)',
                        },
                        started_at: { type: 'integer' },
                        until: { type: 'integer', description: 'Until when (epoch ms) the process vouches for this record; it renews it every 5 s' },
                      },
                    },
                  },
                },
              },
            },
          }),
          503: unavailable(),
        },
      },
    },
    '/triggers/stream': {
      get: {
        operationId: 'streamTriggerFirings',
        summary: 'Trigger firings as Server-Sent Events (resume with Last-Event-ID)',
        description:
          'One event per firing: `event:` the trigger name, `data:` the firing as JSON ({entryId, partition, trigger, user_id, at, event_id, values}), `id:` the cursor after it (one stream id per partition, comma-separated). Reconnecting with that id in the Last-Event-ID header resumes without loss; without it the stream starts after the newest firing. A comment line every 15 s keeps the connection alive. A client that leaves more than 1 MiB unread is disconnected (it resumes with Last-Event-ID); at most --max-event-streams streams are open at once.',
        parameters: [
          { name: 'name', in: 'query', required: false, description: 'Only firings of this trigger', schema: { type: 'string', pattern: NAME.source } },
          { name: 'Last-Event-ID', in: 'header', required: false, description: 'The id of the last event received', schema: { type: 'string' } },
        ],
        responses: {
          200: { description: 'An endless text/event-stream', content: { 'text/event-stream': { schema: { type: 'string' } } } },
          400: error('A bad or unknown trigger name, or a Last-Event-ID this stream could not have sent'),
          503: unavailable('Redis unavailable, or every event stream slot taken (--max-event-streams); retry after Retry-After seconds'),
        },
      },
    },
    '/profile/{userId}/timeline': {
      get: {
        operationId: 'getProfileTimeline',
        summary: "A user's events over each window tag's window, in 30 buckets (the dashboard's sparklines)",
        parameters: [{ name: 'userId', in: 'path', required: true, schema: ID }],
        responses: {
          200: response('Per window tag: event type, window, bucket size, counts oldest first', {
            type: 'object',
            required: ['user_id', 'as_of', 'tags', 'firings'],
            additionalProperties: false,
            properties: {
              user_id: { type: 'string' },
              as_of: { type: 'integer' },
              firings: { type: 'array', description: "The user's trigger firings among the newest 1,000 of its partition, newest first", items: ref('Firing') },
              tags: {
                type: 'object',
                additionalProperties: {
                  type: 'object',
                  required: ['event', 'window_ms', 'bucket_ms', 'counts'],
                  additionalProperties: false,
                  properties: {
                    event: { type: 'string' },
                    window_ms: { type: 'integer' },
                    bucket_ms: { type: 'integer' },
                    counts: { type: 'array', items: { type: 'integer', minimum: 0 } },
                  },
                },
              },
            },
          }),
          400: error('Malformed user id'),
          404: response('No key of this user exists (as GET /profile/{userId} decides)', {
            type: 'object',
            required: ['error', 'user_id'],
            additionalProperties: false,
            properties: { error: { type: 'string' }, user_id: { type: 'string' } },
          }),
          503: unavailable(),
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'getOpenApiDocument',
        summary: 'This document',
        responses: {
          200: response('OpenAPI 3.1 document', {
            type: 'object',
            required: ['openapi', 'info', 'paths'],
            properties: {
              openapi: { type: 'string' },
              info: { type: 'object', additionalProperties: true },
              paths: { type: 'object', additionalProperties: true },
            },
          }),
        },
      },
    },
  },
  components: {
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an API key from PROFILE_API_KEYS' } },
    schemas: SCHEMAS,
  },
} as const;

/** The route table's key of a documented operation: `{name}` becomes express's `:name`. */
export function routeKeyOf(method: string, path: string): string {
  return `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`;
}

/**
 * Adds what the guard in front of every route may answer instead of it: the declared-size
 * check (413) everywhere; and, on each route the route table gives a role, the bearer
 * security requirement with its 401, 403 and the rate limit's 429 (on a public route, an
 * empty security requirement).
 */
function withGuards<T extends { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }>(doc: T): T {
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      op.responses[413] = response('Body over the limit (declared: refused before reading, connection closed)', { oneOf: [ref('Error'), ref('FieldErrors')] });
      const key = routeKeyOf(method, path);
      if (!(key in ROUTES)) throw new Error(`OpenAPI documents ${key}, which is not in the route table`);
      // Public routes say so explicitly (an empty requirement), rather than by leaving it out.
      if (ROUTES[key as RouteKey] === null) {
        Object.assign(op, { security: [] });
        continue;
      }
      Object.assign(op, { security: [{ bearer: [] }] });
      op.responses[401] = response('No or unknown API key (when keys are configured)', ref('Error'), { 'WWW-Authenticate': { schema: { type: 'string' } } });
      op.responses[403] = response("The key's role may not use this route", ref('Error'));
      op.responses[429] = response('Rate limit exceeded', ref('Error'), { 'Retry-After': { description: 'seconds', schema: { type: 'string' } } });
    }
  }
  return doc;
}

export const openApiDocument = withGuards(
  JSON.parse(JSON.stringify(document)) as typeof document & { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> },
);
