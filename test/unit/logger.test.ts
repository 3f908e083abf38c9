import { describe, expect, it } from 'vitest';
import { createLogger, linesPerTurn } from '../../src/infrastructure/logger';

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('JSON lines on standard output (linesPerTurn)', () => {
  it('writes the lines of one turn of the event loop together, in order and redacted, before the next turn', async () => {
    const writes: string[] = [];
    const logger = createLogger('info', linesPerTurn({ write: (text) => writes.push(text) }));
    logger.info('first');
    logger.child({ reqId: 'r-1' }).info({ accessToken: 'at-secret', url: '/webhooks/bankhub?token=tk-secret' }, 'second');
    expect(writes).toEqual([]);

    await nextTurn();
    expect(writes).toHaveLength(1);
    const lines = writes[0]!.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.msg)).toEqual(['first', 'second']);
    expect(lines[1]).toMatchObject({ reqId: 'r-1', accessToken: '[redacted]', url: '/webhooks/bankhub?token=[redacted]' });
    expect(writes[0]).not.toMatch(/secret/);

    logger.info('third');
    await nextTurn();
    expect(writes).toHaveLength(2);
    expect(JSON.parse(writes[1]!)).toMatchObject({ msg: 'third' });
  });

  it('writes what is pending at once when flushed (pino\'s logger.flush)', () => {
    const writes: string[] = [];
    const logger = createLogger('info', linesPerTurn({ write: (text) => writes.push(text) }));
    logger.info('pending');
    let flushed = false;
    logger.flush(() => (flushed = true));
    expect(flushed).toBe(true);
    expect(writes.map((w) => (JSON.parse(w) as { msg: string }).msg)).toEqual(['pending']);
  });
});
