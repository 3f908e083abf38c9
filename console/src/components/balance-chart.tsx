import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { Break, Line } from '../api';
import { useConsole } from '../context';
import { BANK_TIME_ZONE, formatCount, formatDate, LOCALES } from '../format';

/**
 * The balance after each line over the period, with the breaks marked (uPlot on a canvas). The chart is a
 * picture: its y values are pixels, so a balance becomes a JS number here and only here; every figure a person
 * reads is in the table, formatted from the exact string.
 */
export function BalanceChart({ lines, breaks, total }: { lines: Line[]; breaks: Break[]; total: number }) {
  const { t, lang } = useConsole();
  const box = useRef<HTMLDivElement>(null);
  const points = lines.filter((l) => l.balanceAfter !== null);
  const xs = points.map((l) => Date.parse(l.transactionDateTime) / 1000);
  const marks = breakMarks(points, xs, breaks);
  // Breaks whose two lines are both drawn: the line stops after the first of them.
  const gaps = new Map(
    breaks.flatMap((b) => {
      const i = points.findIndex((l) => l.transactionId === b.afterTransactionId);
      const next = points[i + 1];
      return i >= 0 && next?.transactionId === b.beforeTransactionId ? [[b.afterTransactionId, (xs[i]! + xs[i + 1]!) / 2] as const] : [];
    }),
  );
  useEffect(() => {
    const el = box.current;
    if (!el || points.length === 0) return;
    // The line is interrupted at each break (a null point half way), so a gap is never drawn as a slope.
    const data: [number[], (number | null)[]] = [[], []];
    points.forEach((l, i) => {
      data[0].push(xs[i]!);
      data[1].push(Number(l.balanceAfter));
      const gap = gaps.get(l.transactionId);
      if (gap !== undefined) {
        data[0].push(gap);
        data[1].push(null);
      }
    });
    const compact = new Intl.NumberFormat(LOCALES[lang], { notation: 'compact', maximumFractionDigits: 1 });
    const dayOf = (s: number) => formatDate(new Date(s * 1000).toLocaleDateString('en-CA', { timeZone: BANK_TIME_ZONE }), lang);
    const width = () => Math.max(280, el.clientWidth);
    const plot = new uPlot(
      {
        width: width(),
        height: 220,
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), BANK_TIME_ZONE),
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true } },
        axes: [
          { values: (_u, splits) => splits.map((s) => dayOf(s).slice(0, 5)), stroke: '#333' },
          { values: (_u, splits) => splits.map((s) => compact.format(s)), size: 60, stroke: '#333' },
        ],
        series: [{}, { stroke: '#1d4ed8', width: 2, spanGaps: false, points: { show: points.length < 60 } }],
        hooks: {
          draw: [
            (u) => {
              const ctx = u.ctx;
              ctx.save();
              ctx.strokeStyle = '#b91c1c';
              ctx.lineWidth = 2 * devicePixelRatio;
              ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
              for (const x of marks) {
                const px = u.valToPos(x, 'x', true);
                ctx.beginPath();
                ctx.moveTo(px, u.bbox.top);
                ctx.lineTo(px, u.bbox.top + u.bbox.height);
                ctx.stroke();
              }
              ctx.restore();
            },
          ],
        },
      },
      data,
      el,
    );
    const onResize = () => plot.setSize({ width: width(), height: 220 });
    addEventListener('resize', onResize);
    return () => {
      removeEventListener('resize', onResize);
      plot.destroy();
    };
  }, [lines, breaks, lang]);
  if (points.length === 0) return null;
  const summary = t.chartSummary(formatCount(points.length, lang), formatCount(marks.length, lang));
  return (
    <figure class="chart">
      <figcaption>
        <strong>{t.chartTitle}</strong> <span class="muted">{summary}</span>
        {lines.length < total && <span class="muted"> {t.chartPartial(formatCount(lines.length, lang), formatCount(total, lang))}</span>}
      </figcaption>
      <div ref={box} class="chart-canvas" role="img" aria-label={`${t.chartTitle}. ${summary}`} data-break-marks={marks.length} />
    </figure>
  );
}

/** Where each break is drawn: half way between the instants of its two lines (or at the one that is loaded). */
function breakMarks(points: Line[], xs: number[], breaks: Break[]): number[] {
  return breaks.flatMap((b) => {
    const i = points.findIndex((l) => l.transactionId === b.afterTransactionId);
    const j = points.findIndex((l) => l.transactionId === b.beforeTransactionId);
    if (i >= 0 && j >= 0) return [(xs[i]! + xs[j]!) / 2];
    if (j >= 0) return [xs[j]!];
    if (i >= 0) return [xs[i]!];
    return [];
  });
}
