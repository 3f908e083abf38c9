import { type Answer, postWebhook } from './webhook-load';

/** Posts every body again, `concurrency` at a time; the answers in no particular order. */
export async function repostAll(url: string, token: string, bodies: ReadonlyMap<string, string>, concurrency = 8): Promise<Answer[]> {
  const queue = [...bodies];
  const answers: Answer[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let next = queue.pop(); next; next = queue.pop()) {
        const [transactionId, body] = next;
        answers.push({ transactionId, ...(await postWebhook(url, token, body, 15_000)) });
      }
    }),
  );
  return answers;
}

interface ProjectionReport {
  projection: string;
  eventsBehind: string | null;
  lastError: string | null;
}

/** Polls GET /projections until every projection has nothing behind and no error. */
export async function caughtUp(url: string, timeoutMs: number): Promise<ProjectionReport[]> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    const res = await fetch(`${url}/projections`).catch(() => null);
    if (res?.ok) {
      const { projections } = (await res.json()) as { projections: ProjectionReport[] };
      last = projections;
      if (projections.length > 0 && projections.every((p) => p.eventsBehind === '0' && p.lastError === null)) return projections;
    }
    if (Date.now() > deadline) throw new Error(`the projections did not catch up: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Transaction id → how many statement lines carry it, over every account's 2026 statement (all pages). */
export async function booksOf(url: string): Promise<Map<string, number>> {
  const lines = new Map<string, number>();
  const { accounts } = (await (await fetch(`${url}/accounts`)).json()) as { accounts: { id: string }[] };
  for (const { id } of accounts) {
    let cursor: string | null = null;
    do {
      const page = `${url}/accounts/${id}/statement?from=2026-01-01&to=2026-12-31&limit=5000${cursor ? `&cursor=${cursor}` : ''}`;
      const res = await fetch(page);
      if (!res.ok) throw new Error(`${page}: ${res.status} ${await res.text()}`);
      const body = (await res.json()) as { lines: { transactionId: string }[]; nextCursor: string | null };
      for (const line of body.lines) lines.set(line.transactionId, (lines.get(line.transactionId) ?? 0) + 1);
      cursor = body.nextCursor;
    } while (cursor);
  }
  return lines;
}
