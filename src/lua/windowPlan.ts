import { EventType } from '../core/event';
import { WINDOW_FIELDS, WindowTag, longestWindow } from '../core/tags';
import { LEVEL_PREFIX, tagLevels, typePanePlan } from '../core/panes';

/** One window tag as the window scripts read it (see includes/tagValues.lua). */
interface TagPlan {
  name: string;
  agg: WindowTag['aggregation'];
  /** 1-based index of its field in WINDOW_FIELDS; 0 for count. */
  field: number;
  window: number;
  res: number;
  /** Pane levels it reads (ms, finest first) and the prefix of their field names ('' numeric panes, '<field>' value panes). */
  levels: number[];
  prefix: string;
  /** count_by: the k largest (0: all). */
  top: number;
  /** Name of its running total in the pane hash's T field ('' for kinds without one): the same for tags that count the same panes. */
  total: string;
}

/** One event type's part of the plan: what its panes keep, and its tags. */
interface TypePlan {
  name: EventType;
  longest: number;
  numeric: boolean;
  numericField: number;
  numericLevels: number[];
  values: { field: number; levels: number[] }[];
  distinct: number[];
  tags: TagPlan[];
}

/** What the window scripts need to know of the tag config, sent as one JSON argument (ARGV[2]). */
export interface WindowPlan {
  /** The event types with tags, in config order: the order of their keys in a read. */
  types: EventType[];
  /** The plan as the scripts decode it (cjson). */
  json: string;
}

/**
 * Running totals are kept for count and count_by (integers: moved by adding and
 * subtracting panes without rounding); the other kinds merge panes at read time.
 */
function totalSpec(t: WindowTag, field: number): string {
  const steps = `${LEVEL_PREFIX[t.resolutionMs]}${t.windowMs / t.resolutionMs}`;
  if (t.aggregation === 'count') return steps;
  if (t.aggregation === 'count_by') return `${field}${steps}`;
  return '';
}

/** The window plan of a tag config: derived once, the same text on every call. */
export function windowPlan(tags: readonly WindowTag[]): WindowPlan {
  const types = [...new Set(tags.map((t) => t.event))];
  const plans: TypePlan[] = types.map((type) => {
    const p = typePanePlan(tags, type);
    return {
      name: type, longest: p.longestMs, numeric: p.numeric, numericField: p.numericField, numericLevels: p.numericLevels,
      values: p.valueFields.map((f) => ({ field: f.index, levels: f.levels })), distinct: p.distinctFields,
      tags: tags.filter((t) => t.event === type).map((t) => {
        const field = t.field ? WINDOW_FIELDS.indexOf(t.field) + 1 : 0;
        return {
          name: t.name, agg: t.aggregation, field, window: t.windowMs, res: t.resolutionMs, levels: tagLevels(t),
          prefix: t.aggregation === 'count_by' ? String(field) : '', top: t.top ?? 0, total: totalSpec(t, field),
        };
      }),
    };
  });
  return { types, json: JSON.stringify({ types: plans, longest: longestWindow(tags) }) };
}
