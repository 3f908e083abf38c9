/** The service's API as the console uses it: every call carries the key as a Bearer header. */

export type Role = 'accountant' | 'auditor' | 'operator' | 'admin';

export interface Me {
  keyId: string | null;
  name: string;
  role: Role;
  roles: Role[];
  operations: string[];
  open: boolean;
}

export interface Account {
  id: string;
  fiId: string;
  fiName: string | null;
  accountNumber: string;
  currency: string;
  balance: string | null;
  lastTransactionAt: string | null;
  openBreaks: number;
  lateDeliveries: number;
  /** Events of this account that a projection set aside (GET /parked): its statements are not reconciled. */
  parkedEvents: number;
}

export interface Break {
  id: string;
  accountId: string;
  afterTransactionId: string;
  beforeTransactionId: string;
  missingAmount: string;
  status: 'open' | 'resolved';
  openedAt: string;
  resolvedAt: string | null;
  resolution: string | null;
  resolvedBySource: string | null;
  healing: { attempts: number; lastAttemptAt: string | null; lastOutcome: string | null; lastDetail: string | null };
}

export interface Anomaly {
  kind: 'late' | 'conflict';
  accountId: string;
  transactionId: string;
  receivedAt: string;
  eventId: string;
  source: string;
  details: Record<string, string | null>;
}

export interface Line {
  transactionId: string;
  eventId: string;
  transactionDate: string;
  transactionDateTime: string;
  bookingDate: string | null;
  amount: string;
  runningBalance: string | null;
  balanceBefore: string | null;
  balanceAfter: string | null;
  description: string | null;
  reference: string | null;
  counterAccountNumber: string | null;
  counterAccountName: string | null;
  counterAccountBankName: string | null;
  virtualAccountNumber: string | null;
  late: boolean;
}

export interface Statement {
  accountId: string;
  currency: string;
  from: string;
  to: string;
  openingBalance: string | null;
  closingBalance: string | null;
  totalCredits: string;
  totalDebits: string;
  reconciled: boolean;
  digest: string;
  lineCount: number;
  breaks: Break[];
  lines: Line[];
  nextCursor: string | null;
}

export interface AuditEvent {
  position: string;
  streamId: string;
  revision: string;
  eventId: string;
  type: string;
  recordedAt: string;
  data: Record<string, unknown>;
  metadata: Record<string, unknown>;
}

export interface ProjectionStatus {
  projection: string;
  active: boolean;
  position: string | null;
  eventsProjected: string;
  eventsBehind: string | null;
  secondsBehind: number;
  lastError: string | null;
  parked: number;
}

export interface ServiceStatus {
  projections: { projection: string; eventsBehind: string | null; secondsBehind: number; parked: number }[];
  stale: boolean;
}

/** An API problem (RFC 9457): its title and detail are what the user reads. */
export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
  ) {
    super(detail ? `${title}: ${detail}` : title);
  }
}

export interface Api {
  json<T>(path: string): Promise<T>;
  /** Every page of a list that answers `{ [field]: [...], nextCursor }` (a missing nextCursor is the last page). */
  all<T>(path: string, field: string): Promise<T[]>;
  download(path: string): Promise<{ blob: Blob; filename: string | null }>;
  raw(path: string): Promise<{ bytes: Uint8Array<ArrayBuffer>; sha256: string | null }>;
}

/** Lists are read in the largest pages the API gives, to search and sort thousands of accounts in the page. */
const LIST_PAGE = 5000;

export function createApi(key: string, onRefused: (problem: ApiProblem) => void): Api {
  async function request(path: string, accept: string): Promise<Response> {
    const headers: Record<string, string> = { accept };
    if (key !== '') headers.authorization = `Bearer ${key}`;
    let response: Response;
    try {
      response = await fetch(path, { headers });
    } catch (error) {
      throw new ApiProblem(0, 'The service cannot be reached', error instanceof Error ? error.message : String(error));
    }
    if (!response.ok) {
      const problem = await problemOf(response);
      if (response.status === 401) onRefused(problem);
      throw problem;
    }
    return response;
  }
  return {
    async json<T>(path: string) {
      return (await (await request(path, 'application/json')).json()) as T;
    },
    async all<T>(path: string, field: string) {
      const items: T[] = [];
      let cursor: string | null = null;
      do {
        const separator = path.includes('?') ? '&' : '?';
        const page: Record<string, unknown> = await this.json(
          `${path}${separator}limit=${LIST_PAGE}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
        );
        items.push(...((page[field] as T[] | undefined) ?? []));
        const next = page.nextCursor;
        cursor = typeof next === 'string' && next !== cursor ? next : null;
      } while (cursor);
      return items;
    },
    async download(path: string) {
      const response = await request(path, 'text/csv');
      const disposition = response.headers.get('content-disposition') ?? '';
      const filename = /filename="([^"]+)"/.exec(disposition)?.[1] ?? null;
      return { blob: await response.blob(), filename };
    },
    async raw(path: string) {
      const response = await request(path, '*/*');
      return { bytes: new Uint8Array(await response.arrayBuffer()), sha256: response.headers.get('x-content-sha256') };
    },
  };
}

/** Asks who the key is (GET /me); refused keys become an ApiProblem with the service's words. */
export async function whoAmI(key: string): Promise<Me> {
  return createApi(key, () => {}).json<Me>('/me');
}

async function problemOf(response: Response): Promise<ApiProblem> {
  try {
    const body = (await response.json()) as { title?: unknown; detail?: unknown };
    if (typeof body.title === 'string') {
      return new ApiProblem(response.status, body.title, typeof body.detail === 'string' ? body.detail : undefined);
    }
  } catch {
    // not problem+json: fall through to the status line
  }
  return new ApiProblem(response.status, `${response.status} ${response.statusText}`.trim(), undefined);
}
