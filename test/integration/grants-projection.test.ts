import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeEvent } from '../../src/domain/event-codec';
import { grantStreamId, type LedgerEvent } from '../../src/domain/events';
import { createProjectionSchema } from '../../src/infrastructure/projection-store';
import { projectFromLog, verifyProjection } from '../../src/infrastructure/read-model-maintenance';
import { createGrantsProjection, GRANTS_SCHEMA } from '../../src/projections/grants.projection';
import { findGrantOfAccount, listGrants } from '../../src/projections/grants.queries';
import { createLedgerContext, type LedgerContext } from '../support/ledger';
import { readModelIn } from '../../src/projections/read-model';

const projection = createGrantsProjection();
let ctx: LedgerContext;
let clock = Date.parse('2026-02-01T00:00:00Z');

async function append(event: LedgerEvent & { data: { grantId: string | null } }): Promise<void> {
  clock += 1000;
  await ctx.store.appendToStream(
    grantStreamId(event.data.grantId),
    [{ eventId: randomUUID(), ...encodeEvent(event), metadata: { receivedAt: new Date(clock).toISOString() } }],
    'any',
  );
}
const project = () => projectFromLog({ db: ctx.database.db, eventStore: ctx.store, projection, schema: GRANTS_SCHEMA });
const linked = (grantId: string, accountNumber: string, fiId: string | null = 'fi-vcb'): LedgerEvent & { data: { grantId: string } } => ({
  type: 'GrantLinked',
  data: {
    grantId,
    fiId,
    accounts: [{ accountNumber, accountName: 'CÔNG TY TNHH CÀ PHÊ', currency: 'VND', fiId }],
    linkedAt: new Date(clock).toISOString(),
    requestId: 'req-1',
  },
});
const webhook = (grantId: string | null, webhookCode: string, errorCode: string | null = null): LedgerEvent & { data: { grantId: string | null } } => ({
  type: 'GrantWebhookReceived',
  data: {
    grantId,
    webhookCode,
    environment: 'dev',
    error: errorCode ? { errorType: 'GRANT_ERROR', errorCode, errorMessage: 'msg' } : null,
  },
});

beforeAll(async () => {
  ctx = await createLedgerContext('grants');
  await createProjectionSchema(ctx.database.db, projection, GRANTS_SCHEMA);
});
afterAll(async () => {
  await ctx?.close();
});

describe('grants projection', () => {
  it('lists linked grants with their accounts and follows their GRANT webhooks', async () => {
    await append(linked('g1', '0123456789'));
    await append(webhook('g1', 'ERROR', 'GRANT_LOGIN_REQUIRED'));
    await append(linked('g2', '987654321'));
    await append(webhook('g2', 'GRANT_PAUSED'));
    await append(webhook('g3', 'DEFAULT_UPDATE'));
    await append(webhook(null, 'ERROR', 'GRANT_LOGIN_REQUIRED'));
    await project();
    const grants = await listGrants(readModelIn(ctx.database.db, GRANTS_SCHEMA));
    expect(grants.map((g) => [g.grantId, g.status, g.lastError?.errorCode ?? null])).toEqual([
      ['g2', 'paused', null],
      ['g1', 'login_required', 'GRANT_LOGIN_REQUIRED'],
      // Known only from a webhook: no link time, no accounts.
      ['g3', 'active', null],
    ]);
    expect(grants[1]).toMatchObject({ fiId: 'fi-vcb', accounts: [{ accountNumber: '0123456789', currency: 'VND' }] });
    expect(grants[2]).toMatchObject({ linkedAt: null, accounts: [] });
  });

  it('finds the grant of an account by bank and number, never a revoked one', async () => {
    expect(await findGrantOfAccount(readModelIn(ctx.database.db, GRANTS_SCHEMA), 'fi-vcb', '0123456789')).toBe('g1');
    expect(await findGrantOfAccount(readModelIn(ctx.database.db, GRANTS_SCHEMA), 'fi-other', '0123456789')).toBeNull();
    await append(webhook('g1', 'GRANT_DELETED'));
    await project();
    expect(await findGrantOfAccount(readModelIn(ctx.database.db, GRANTS_SCHEMA), 'fi-vcb', '0123456789')).toBeNull();
  });

  it('changes nothing when the same events are applied twice', async () => {
    const snapshot = async () => (await sql`select * from grants.grants order by grant_id`.execute(ctx.database.db)).rows;
    const before = await snapshot();
    const events = (await ctx.store.readAll({ after: null, maxCount: 1000, filter: { eventTypes: projection.eventTypes } })).events;
    await ctx.database.db.transaction().execute((trx) => projection.apply(readModelIn(trx, GRANTS_SCHEMA), events));
    expect(await snapshot()).toEqual(before);
  });

  it('rebuilds from zero to the same rows as the live read model', async () => {
    const report = await verifyProjection({ db: ctx.database.db, eventStore: ctx.store, projection, schema: GRANTS_SCHEMA });
    expect(report.differences).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
