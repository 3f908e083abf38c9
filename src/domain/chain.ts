import { isBookableMoney } from './money';

/**
 * The bank's running-balance chain, as pure functions.
 *
 * For a transaction t: after(t) = runningBalance, before(t) = runningBalance − amount. Consecutive lines t, u
 * link when after(t) = before(u); otherwise the chain has a break with missingAmount = before(u) − after(t).
 *
 * Statement order: by transactionDateTime; among transactions of the same instant (minute precision makes ties
 * common) the chain decides, starting from the balance the previous instant left; where the chain cannot decide
 * (cycles such as +10 000 then −10 000, unrelated fragments) the Cas transaction id does. The order is a function
 * of the set of transactions only, never of their arrival, so every delivery order gives the same statement.
 */
export interface ChainTransaction {
  readonly id: string;
  /** transactionDateTime in milliseconds since the epoch. */
  readonly instant: number;
  readonly amount: bigint;
  readonly runningBalance: bigint | null;
}

export interface Balances {
  readonly before: bigint | null;
  readonly after: bigint | null;
}

/**
 * A line without runningBalance carries its predecessor's balance forward by its amount. A carried balance past what
 * the ledger books (±MAX_BOOKABLE_MINOR_UNITS) is no balance the bank ever stated: it is unknown, as when nothing came
 * before, so the line is booked and the chain picks up again at the next running balance (the read models hold
 * balances as bigint, and a break's missing amount only fits while both balances are bookable).
 */
export function balancesOf(tx: Pick<ChainTransaction, 'amount' | 'runningBalance'>, incoming: bigint | null): Balances {
  if (tx.runningBalance !== null) return { before: tx.runningBalance - tx.amount, after: tx.runningBalance };
  if (incoming === null) return { before: null, after: null };
  const after = incoming + tx.amount;
  return { before: incoming, after: isBookableMoney(after) ? after : null };
}

/** The amount missing between two consecutive lines, or null when they link (or a balance is unknown). */
export function missingBetween(after: bigint | null, before: bigint | null): bigint | null {
  if (after === null || before === null || after === before) return null;
  return before - after;
}

const byId = <T extends ChainTransaction>(a: T, b: T) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * Orders transactions that share one instant. Lines with a running balance are edges before → after of a graph
 * over balances; an Euler trail from the incoming balance (Hierholzer) is an order with no break when one exists,
 * and otherwise still chains every edge that can be chained from there. A line without a running balance goes
 * where its amount closes a break exactly; the others follow, by id.
 */
export function orderSameInstant<T extends ChainTransaction>(incoming: bigint | null, group: readonly T[]): T[] {
  if (group.length < 2) return [...group];
  const known = group.filter((t) => t.runningBalance !== null).sort(byId);
  const unknown = group.filter((t) => t.runningBalance === null).sort(byId);
  const outgoing = new Map<bigint, T[]>();
  for (const edge of known) {
    const from = edge.runningBalance! - edge.amount;
    const list = outgoing.get(from);
    if (list) list.push(edge);
    else outgoing.set(from, [edge]);
  }
  const ordered: T[] = [];
  let start = incoming !== null && outgoing.get(incoming)?.length ? incoming : trailStart(outgoing);
  while (start !== null) {
    ordered.push(...eulerTrail(start, outgoing));
    start = trailStart(outgoing);
  }
  return placeWithoutBalance(incoming, ordered, unknown);
}

function placeWithoutBalance<T extends ChainTransaction>(incoming: bigint | null, ordered: T[], unknown: T[]): T[] {
  const result = [...ordered];
  const rest: T[] = [];
  for (const line of unknown) {
    let carried = incoming;
    let placed = false;
    for (let i = 0; i < result.length && !placed; i++) {
      const next = result[i]!;
      const nextBefore = next.runningBalance === null ? null : next.runningBalance - next.amount;
      if (carried !== null && nextBefore !== null && carried !== nextBefore && carried + line.amount === nextBefore) {
        result.splice(i, 0, line);
        placed = true;
      }
      carried = balancesOf(result[i]!, carried).after;
    }
    if (!placed) rest.push(line);
  }
  return [...result, ...rest];
}

function eulerTrail<T extends ChainTransaction>(start: bigint, outgoing: Map<bigint, T[]>): T[] {
  const stack: { node: bigint; via: T | null }[] = [{ node: start, via: null }];
  const trail: T[] = [];
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const edge = outgoing.get(top.node)?.shift();
    if (edge) stack.push({ node: edge.runningBalance!, via: edge });
    else {
      stack.pop();
      if (top.via) trail.push(top.via);
    }
  }
  return trail.reverse();
}

/** Where the next trail begins: a balance with more edges leaving than arriving, else the lowest remaining id. */
function trailStart<T extends ChainTransaction>(outgoing: Map<bigint, T[]>): bigint | null {
  const surplus = new Map<bigint, number>();
  let lowest: T | null = null;
  for (const [from, edges] of outgoing) {
    for (const edge of edges) {
      surplus.set(from, (surplus.get(from) ?? 0) + 1);
      surplus.set(edge.runningBalance!, (surplus.get(edge.runningBalance!) ?? 0) - 1);
      if (!lowest || edge.id < lowest.id) lowest = edge;
    }
  }
  if (!lowest) return null;
  let best: { node: bigint; id: string } | null = null;
  for (const [node, s] of surplus) {
    const first = outgoing.get(node)?.[0];
    if (s > 0 && first && (!best || first.id < best.id)) best = { node, id: first.id };
  }
  return best ? best.node : lowest.runningBalance! - lowest.amount;
}

export interface StatementLine<T extends ChainTransaction> extends Balances {
  readonly transaction: T;
}

export interface ChainBreak {
  readonly afterTransactionId: string;
  readonly beforeTransactionId: string;
  readonly missingAmount: bigint;
}

/**
 * The whole statement of one account from scratch: the reference that the incremental projection must equal,
 * whatever the delivery order.
 */
export function buildStatement<T extends ChainTransaction>(transactions: readonly T[]): {
  lines: StatementLine<T>[];
  breaks: ChainBreak[];
} {
  const byInstant = new Map<number, T[]>();
  for (const tx of transactions) {
    const group = byInstant.get(tx.instant);
    if (group) group.push(tx);
    else byInstant.set(tx.instant, [tx]);
  }
  const lines: StatementLine<T>[] = [];
  let incoming: bigint | null = null;
  for (const instant of [...byInstant.keys()].sort((a, b) => a - b)) {
    for (const tx of orderSameInstant(incoming, byInstant.get(instant)!)) {
      const balances = balancesOf(tx, incoming);
      lines.push({ transaction: tx, ...balances });
      incoming = balances.after;
    }
  }
  return { lines, breaks: breaksOf(lines) };
}

export function breaksOf(lines: readonly StatementLine<ChainTransaction>[]): ChainBreak[] {
  const breaks: ChainBreak[] = [];
  for (let i = 1; i < lines.length; i++) {
    const t = lines[i - 1]!;
    const u = lines[i]!;
    const missing = missingBetween(t.after, u.before);
    if (missing !== null) {
      breaks.push({ afterTransactionId: t.transaction.id, beforeTransactionId: u.transaction.id, missingAmount: missing });
    }
  }
  return breaks;
}
