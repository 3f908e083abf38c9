import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/accounts/<id>?from=…`): the page is served at `/` and every API path stays the API's,
 * so a console route can never shadow one.
 */
export type Route =
  | { page: 'accounts' }
  | { page: 'statement'; accountId: string; params: URLSearchParams }
  | { page: 'breaks' }
  | { page: 'anomalies' }
  | { page: 'projections' }
  | { page: 'home' };

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] === 'accounts' && parts[1]) return { page: 'statement', accountId: parts[1], params: new URLSearchParams(query) };
  if (parts[0] === 'accounts') return { page: 'accounts' };
  if (parts[0] === 'breaks') return { page: 'breaks' };
  if (parts[0] === 'anomalies') return { page: 'anomalies' };
  if (parts[0] === 'projections') return { page: 'projections' };
  return { page: 'home' };
}

/** The link to an account's statement, optionally at a period, a line or a break. */
export function statementHref(accountId: string, params: Record<string, string | undefined> = {}): string {
  const query = new URLSearchParams(Object.entries(params).filter((e): e is [string, string] => e[1] !== undefined));
  const q = query.toString();
  return `#/accounts/${encodeURIComponent(accountId)}${q ? `?${q}` : ''}`;
}

export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return parseRoute(hash);
}
