import { useEffect, useState } from 'preact/hooks';
import type { ServiceStatus } from '../api';
import { useConsole } from '../context';
import { formatCount } from '../format';

const POLL_MS = 10_000;

/** Projection lag and parked events (GET /status), so that a stale page says it is stale. */
export function StatusStrip() {
  const { api, t, lang } = useConsole();
  const [status, setStatus] = useState<ServiceStatus | null | 'failed'>(null);
  useEffect(() => {
    let live = true;
    const poll = () =>
      api.json<ServiceStatus>('/status').then(
        (s) => live && setStatus(s),
        () => live && setStatus('failed'),
      );
    void poll();
    const timer = setInterval(poll, POLL_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [api]);
  if (status === null) return <div class="status-strip" role="status" aria-live="polite" />;
  if (status === 'failed') {
    return (
      <div class="status-strip stale" role="status" aria-live="polite">
        {t.statusUnknown}
      </div>
    );
  }
  const behind = status.projections.filter((p) => p.secondsBehind > 0 || (p.eventsBehind !== null && p.eventsBehind !== '0'));
  const parked = status.projections.filter((p) => p.parked > 0);
  return (
    <div class={`status-strip ${status.stale ? 'stale' : 'fresh'}`} role="status" aria-live="polite" data-stale={String(status.stale)}>
      <span class="status-headline">{status.stale ? t.statusStale : t.statusUpToDate}</span>
      {status.stale &&
        behind.map((p) => (
          <span key={p.projection} class="status-item">
            {t.statusBehind(p.projection, p.eventsBehind === null ? '?' : formatCount(p.eventsBehind, lang), formatCount(Math.round(p.secondsBehind), lang))}
          </span>
        ))}
      {parked.map((p) => (
        <span key={`parked-${p.projection}`} class="status-item parked">
          {t.statusParked(p.projection, formatCount(p.parked, lang))}
        </span>
      ))}
    </div>
  );
}
