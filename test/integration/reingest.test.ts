import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../src/application/digest';
import { reingestQuarantined } from '../../src/application/reingest-quarantined';
import { createTestApp, sample, type TestApp } from '../support/app';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

describe('re-ingesting a quarantined body', () => {
  const deps = () => ({ eventStore: t.stores.eventStore, quarantine: t.stores.quarantine });
  /** A webhook body as an older version quarantined it. */
  const putQuarantined = (body: Buffer, receivedAt: Date) =>
    t.stores.quarantine.put({
      rawBody: body,
      bodySha256: sha256(body),
      contentType: 'application/json',
      problems: [{ field: 'transaction.amount', message: 'refused by an older version' }],
      source: 'webhook',
      requestId: 'r-old',
      remoteAddress: '20.2.69.168',
      receivedAt,
    });

  it('books a body that an older version refused, keeping when Cas sent it', async () => {
    const body = sample('transaction-webhook.json');
    const receivedAt = new Date('2026-11-01T10:00:00Z');
    const id = await putQuarantined(body, receivedAt);
    const result = await reingestQuarantined(deps(), id, new Date());
    expect(result).toMatchObject({ status: 'ingested', outcome: { status: 'accepted' } });
    const [event] = await t.stores.eventStore.readStream('bankTx-3cacecf6935011ee952542010a400022');
    expect(event!.metadata.receivedAt).toBe(receivedAt.toISOString());
    expect(await reingestQuarantined(deps(), id, new Date())).toMatchObject({ status: 'already_reingested' });
  });

  it('leaves a still-invalid body in quarantine and says why', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/webhooks/bankhub', headers: { 'x-webhook-token': t.config.webhookToken! }, payload: '{"webhookType":1}' });
    const { quarantineId } = res.json();
    const result = await reingestQuarantined(deps(), String(quarantineId), new Date());
    expect(result).toMatchObject({ status: 'still_invalid', problems: [{ field: 'webhookType' }, { field: 'webhookCode' }] });
    expect((await t.stores.quarantine.get(String(quarantineId)))?.reingestedAt).toBeNull();
    expect(await reingestQuarantined(deps(), '999999', new Date())).toEqual({ status: 'not_found' });
  });

  it('refuses on re-ingest what the webhook refuses: a key twice stays quarantined, whatever an older version did', async () => {
    const body = Buffer.from(sample('transaction-webhook.json').toString('utf8').replace('"amount": 10000,', '"amount": 10000, "amount": 1,'));
    const id = await putQuarantined(body, new Date());
    const result = await reingestQuarantined(deps(), id, new Date());
    expect(result).toMatchObject({ status: 'still_invalid', problems: [{ field: 'transaction.amount', message: expect.stringMatching(/twice/) }] });
  });
});
