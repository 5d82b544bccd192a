import { ConfigError } from './errors';

/** What a key may do: `ingest` writes events, `read` reads profiles and status, `admin` everything. */
export type Role = 'ingest' | 'read' | 'admin';
export const ROLES: readonly Role[] = ['ingest', 'read', 'admin'];

export interface ApiKey {
  key: string;
  role: Role;
}

const KEY_PATTERN = /^[A-Za-z0-9._~+/=-]{16,256}$/;

/**
 * Parses `key1:ingest,key2:read,key3:admin`. Keys are 16–256 characters of
 * `A-Z a-z 0-9 . _ ~ + / = -` (what fits a Bearer token); each key appears once.
 */
export function parseApiKeys(spec: string): ApiKey[] {
  const keys: ApiKey[] = [];
  for (const entry of spec
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const at = entry.lastIndexOf(':');
    const key = entry.slice(0, at);
    const role = entry.slice(at + 1) as Role;
    if (at < 0 || !ROLES.includes(role)) throw new ConfigError(`API key entries must be <key>:<${ROLES.join('|')}> (an entry ends in "${entry.slice(-12)}")`);
    if (!KEY_PATTERN.test(key)) throw new ConfigError('API keys must be 16-256 characters of A-Z a-z 0-9 . _ ~ + / = -');
    if (keys.some((k) => k.key === key)) throw new ConfigError('an API key is listed twice');
    keys.push({ key, role });
  }
  return keys;
}
