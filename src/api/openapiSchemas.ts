import { EVENT_TYPES, ID_PATTERN } from '../core/event';
import { RUN_ID } from '../batch/registry';

/** A user id (and any other id of an event): ID_PATTERN, the rule the code applies. */
export const ID = { type: 'string', pattern: ID_PATTERN.source } as const;

/** A reference to one of {@link SCHEMAS} by name. */
export const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** The OpenAPI document's shared schemas (components.schemas), JSON Schema 2020-12. */
export const SCHEMAS = {
  Event: {
    type: 'object',
    required: ['user_id', 'type'],
    additionalProperties: false,
    properties: {
      user_id: ID,
      type: { type: 'string', enum: [...EVENT_TYPES] },
      ts: {
        oneOf: [
          { type: 'integer', minimum: 0 },
          { type: 'string', format: 'date-time' },
        ],
        description: 'event time, epoch ms or ISO-8601; default now',
      },
      event_id: { ...ID, description: 'idempotency key; assigned at ingest when absent' },
      ad_id: ID,
      campaign_id: ID,
      amount: { type: 'number', minimum: 0, description: 'required for purchase' },
      currency: { type: 'string' },
    },
  },
  FieldErrors: {
    type: 'object',
    required: ['errors'],
    additionalProperties: false,
    properties: {
      errors: {
        type: 'array',
        minItems: 1,
        items: {
          type: 'object',
          required: ['index', 'field', 'message'],
          additionalProperties: false,
          properties: { index: { type: 'integer', minimum: 0 }, field: { type: 'string' }, message: { type: 'string' } },
        },
      },
    },
  },
  Error: { type: 'object', required: ['error'], additionalProperties: false, properties: { error: { type: 'string' } } },
  Stale: {
    type: 'object',
    description: "A read refused by its max_lag_ms: the realtime path is further behind for this user's partition (lag_ms; null: not known)",
    required: ['error', 'user_id', 'lag_ms', 'max_lag_ms'],
    additionalProperties: false,
    properties: {
      error: { type: 'string' },
      user_id: { type: 'string' },
      lag_ms: { type: ['integer', 'null'], minimum: 0 },
      max_lag_ms: { type: 'integer', minimum: 0 },
    },
  },
  Profile: {
    type: 'object',
    required: ['user_id', 'tags', 'meta'],
    additionalProperties: false,
    properties: {
      user_id: { type: 'string' },
      tags: {
        type: 'object',
        additionalProperties: {
          oneOf: [
            { type: 'number' },
            { type: 'string', description: 'text offline tags, e.g. segment_id' },
            {
              type: 'object',
              additionalProperties: { type: 'number' },
              description:
                'count_by: value → count; histogram: bucket label → count (integers); percentile: p<p> → the value within 1 %, e.g. {"p50": 12.5, "p99": 80.2}',
            },
            {
              type: 'array',
              items: { type: ['number', 'string'] },
              description: 'last_k / first_k: the values of the k newest / oldest events of the window (numbers for amount)',
            },
            { type: 'null', description: 'avg, min, max, last, first, variance, stddev or percentile of a window without values' },
          ],
        },
      },
      meta: {
        type: 'object',
        required: ['as_of', 'last_event_at'],
        additionalProperties: false,
        properties: {
          as_of: { type: 'integer', description: 'time (ms) the window tags were evaluated at' },
          last_event_at: { type: ['integer', 'null'] },
          lag_ms: {
            type: ['integer', 'null'],
            minimum: 0,
            description:
              "how far behind the realtime path is for the user's partition (ms): the age of the oldest event accepted there and not yet applied to the windows, 0 when caught up (sampled every 100 ms); null when not known",
          },
          batch_run_id: { type: 'string' },
          batch_at: { type: 'integer' },
        },
      },
    },
  },
  FlatProfile: {
    type: 'object',
    description:
      'GET /profile/{userId}?view=flat: every realtime and offline tag as a string (numbers as decimal text, approx_distinct among them: its count, exact below k, estimated above; count_by, histogram, percentile, last_k and first_k as their JSON text; segment_id as is); null tags (avg, min, max, last, first, variance, stddev or percentile of a window without values) left out; no user_id, no meta',
    additionalProperties: { type: 'string' },
  },
  Firing: {
    type: 'object',
    required: ['trigger', 'user_id', 'at', 'event_id', 'values'],
    additionalProperties: false,
    description: "A trigger firing: when (ms) and by which event its conditions became true, with their tags' values then (null: no value)",
    properties: {
      trigger: { type: 'string' },
      user_id: { type: 'string' },
      at: { type: 'integer' },
      event_id: { type: 'string' },
      values: { type: 'object', additionalProperties: { type: ['number', 'null'] } },
    },
  },
  RunId: { type: 'string', pattern: RUN_ID.source },
  BatchRun: {
    type: 'object',
    required: ['run_id', 'state'],
    additionalProperties: false,
    properties: {
      run_id: { type: 'string' },
      state: { type: 'string', enum: ['queued', 'running', 'succeeded', 'failed'] },
      started_at: { type: 'integer' },
      finished_at: { type: 'integer' },
      as_of: { type: 'integer' },
      summary: { type: 'object', additionalProperties: true },
      error: { type: 'string' },
    },
  },
  PartitionStatus: {
    type: 'object',
    required: ['partition', 'stream', 'length', 'entries_added', 'last_id', 'first_id', 'groups'],
    additionalProperties: false,
    properties: {
      partition: { type: 'integer' },
      stream: { type: 'string' },
      node: { type: 'string', description: 'cluster master serving the partition' },
      length: { type: 'integer' },
      entries_added: { type: 'integer', description: 'entries ever added, trimmed ones included' },
      last_id: { type: 'string' },
      first_id: { type: ['string', 'null'] },
      groups: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'consumers', 'pending', 'lag', 'entries_read', 'last_delivered_id'],
          additionalProperties: false,
          properties: {
            name: { type: 'string' },
            consumers: { type: 'integer' },
            pending: { type: 'integer' },
            lag: {
              type: ['integer', 'null'],
              description:
                "Entries not yet delivered to the group: 0 exactly when it has caught up, counted up to 100; past that, Redis's own figure capped by the stream's length (it can read high after a Redis restart)",
            },
            entries_read: { type: ['integer', 'null'] },
            last_delivered_id: { type: 'string' },
          },
        },
      },
    },
  },
  Readiness: {
    type: 'object',
    required: ['ready', 'checks'],
    additionalProperties: false,
    properties: {
      ready: { type: 'boolean' },
      checks: {
        type: 'object',
        required: ['redis', 'memory', 'scripts', 'groups'],
        additionalProperties: false,
        properties: {
          redis: ref('Check'),
          memory: ref('Check'),
          scripts: ref('Check'),
          groups: ref('Check'),
        },
      },
    },
  },
  Check: {
    type: 'object',
    required: ['ok'],
    properties: { ok: { type: 'boolean' }, error: { type: 'string' }, missing: { type: 'array', items: { type: 'string' } } },
  },
} as const;
