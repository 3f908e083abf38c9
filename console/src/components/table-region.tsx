import type { ComponentChildren } from 'preact';
import type { Break } from '../api';
import { formatCount, formatDateTime, type Lang } from '../format';
import type { Messages } from '../i18n';

/** A table that scrolls sideways on its own on a narrow screen (the page never does), reachable by keyboard. */
export function TableRegion({ label, tableClass, children }: { label: string; tableClass?: string; children: ComponentChildren }) {
  return (
    <div class="table-scroll" role="region" aria-label={label} tabIndex={0}>
      <table class={tableClass}>{children}</table>
    </div>
  );
}

/** A break's healing state in words: not tried yet, or how often, with what outcome and when last. */
export function healingText(b: Break, t: Messages, lang: Lang): string {
  if (b.healing.attempts === 0) return t.healingNone;
  const tried = t.healingTried(formatCount(b.healing.attempts, lang), b.healing.lastOutcome ?? '?', formatDateTime(b.healing.lastAttemptAt, lang));
  return b.healing.lastDetail ? `${tried} (${b.healing.lastDetail})` : tried;
}
