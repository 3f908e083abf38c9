import { useEffect, useRef, useState } from 'preact/hooks';
import type { AuditEvent, Line } from '../api';
import { Loading, ProblemMessage } from '../components/problem';
import { useConsole } from '../context';
import { formatCount, formatDateTime, formatMoney } from '../format';
import { prettyJson } from '../pretty-json';
import { useLoad } from '../use-load';

/**
 * One line, for auditors: the event that booked it with its metadata, the payload exactly as Cas sent it
 * (indented without re-parsing its numbers) with its SHA-256, and every conflicting repeat of the transaction.
 */
export function LineDetail({ line, currency, onClose }: { line: Line; currency: string; onClose: () => void }) {
  const { api, t, lang } = useConsole();
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    dialog.current?.showModal();
  }, []);
  const loaded = useLoad(
    () => api.json<{ events: AuditEvent[] }>(`/audit/transactions/${encodeURIComponent(line.transactionId)}/events`),
    [api, line.transactionId],
  );
  const conflicts = loaded.state === 'ready' ? loaded.value.events.filter((e) => e.type === 'ConflictingDuplicateReceived') : [];
  return (
    <dialog ref={dialog} class="line-detail" aria-labelledby="line-detail-title" onClose={onClose}>
      <header class="dialog-header">
        <h2 id="line-detail-title">{t.eventAndPayloadOf(line.transactionId)}</h2>
        <button type="button" onClick={() => dialog.current?.close()}>
          {t.close}
        </button>
      </header>
      <p>
        {formatDateTime(line.transactionDateTime, lang)} · {formatMoney(line.amount, lang, currency, { signed: true })} · {line.description ?? ''}
      </p>
      {loaded.state === 'loading' && <Loading />}
      {loaded.state === 'failed' && <ProblemMessage problem={loaded.problem} retry={loaded.retry} />}
      {loaded.state === 'ready' && (
        <>
          <p class={conflicts.length > 0 ? 'warn' : undefined}>
            {conflicts.length > 0 ? t.conflictsCount(formatCount(conflicts.length, lang)) : t.noConflicts}
          </p>
          {loaded.value.events.map((event, i) => (
            <EventView key={event.eventId} event={event} title={i === 0 ? t.event : t.conflictingRepeat(formatCount(i, lang))} />
          ))}
        </>
      )}
    </dialog>
  );
}

function EventView({ event, title }: { event: AuditEvent; title: string }) {
  const { t, lang } = useConsole();
  const { rawBody: _raw, ...metadata } = event.metadata;
  return (
    <section class="event" aria-label={title} data-event-type={event.type}>
      <h3>{title}</h3>
      <dl class="facts">
        <div>
          <dt>{t.eventType}</dt>
          <dd>{event.type}</dd>
        </div>
        <div>
          <dt>{t.eventId}</dt>
          <dd>
            <code>{event.eventId}</code>
          </dd>
        </div>
        <div>
          <dt>{t.stream}</dt>
          <dd>
            <code>
              {event.streamId} @ {event.revision}
            </code>
          </dd>
        </div>
        <div>
          <dt>{t.recordedAt}</dt>
          <dd>{formatDateTime(event.recordedAt, lang, { seconds: true })}</dd>
        </div>
        {typeof event.metadata.receivedAt === 'string' && (
          <div>
            <dt>{t.receivedAt}</dt>
            <dd>{formatDateTime(event.metadata.receivedAt, lang, { seconds: true })}</dd>
          </div>
        )}
        {typeof event.metadata.source === 'string' && (
          <div>
            <dt>{t.source}</dt>
            <dd>{event.metadata.source}</dd>
          </div>
        )}
      </dl>
      <RawPayload eventId={event.eventId} />
      <details>
        <summary>{t.metadata}</summary>
        <pre tabIndex={0}>{JSON.stringify(metadata, null, 2)}</pre>
      </details>
      <details>
        <summary>{t.data}</summary>
        <pre tabIndex={0}>{JSON.stringify(event.data, null, 2)}</pre>
      </details>
    </section>
  );
}

/** The bytes of GET /audit/events/{id}/raw, their SHA-256 as the service states it, and whether this page agrees. */
function RawPayload({ eventId }: { eventId: string }) {
  const { api, t } = useConsole();
  const [check, setCheck] = useState<'matches' | 'differs' | null>(null);
  const loaded = useLoad(() => api.raw(`/audit/events/${encodeURIComponent(eventId)}/raw`), [api, eventId]);
  useEffect(() => {
    if (loaded.state !== 'ready' || !crypto.subtle) return;
    const { bytes, sha256 } = loaded.value;
    void crypto.subtle.digest('SHA-256', bytes).then((digest) => {
      const hex = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
      setCheck(hex === sha256 ? 'matches' : 'differs');
    });
  }, [loaded]);
  if (loaded.state === 'loading') return <Loading />;
  if (loaded.state === 'failed') return loaded.problem.status === 404 ? <p>{t.noRaw}</p> : <ProblemMessage problem={loaded.problem} />;
  const text = new TextDecoder().decode(loaded.value.bytes);
  return (
    <div class="raw">
      <h4>{t.rawPayload}</h4>
      <p class="sha">
        {t.sha256}: <code data-sha256>{loaded.value.sha256}</code>
        {check && <span class={check === 'matches' ? 'ok' : 'warn'}> {check === 'matches' ? `✓ ${t.shaMatches}` : `✗ ${t.shaDiffers}`}</span>}
      </p>
      <pre class="raw-body" tabIndex={0} aria-label={t.rawPayload}>
        {prettyJson(text)}
      </pre>
    </div>
  );
}
