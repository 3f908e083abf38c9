import { LosslessNumber, stringify } from 'lossless-json';

/**
 * A deterministic bank for the Cas simulator, tests and benchmarks: accounts at a few Vietnamese banks, each with a
 * chronological history of Cas-shaped transactions whose running balances chain exactly.
 * The same seed and the same calls give the same bytes; nothing here reads Math.random.
 */

// ---- seeded randomness -------------------------------------------------------------------------------------------

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  chance(probability: number): boolean;
  pick<T>(items: readonly T[]): T;
  hex(length: number): string;
  bigint(min: bigint, max: bigint): bigint;
}

/** sfc32 seeded through cyrb128: small, fast and well mixed; labels derive independent streams from one seed. */
export function createRng(seed: number | string, ...labels: readonly (string | number)[]): Rng {
  let [a, b, c, d] = cyrb128([String(seed), ...labels.map(String)].join('\u0000'));
  const u32 = (): number => {
    a >>>= 0;
    b >>>= 0;
    c >>>= 0;
    d >>>= 0;
    let t = (a + b) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    d = (d + 1) | 0;
    t = (t + d) | 0;
    c = (c + t) | 0;
    return t >>> 0;
  };
  for (let i = 0; i < 12; i += 1) u32();
  const rng: Rng = {
    next: () => u32() / 4294967296,
    int: (min, max) => min + Math.floor(rng.next() * (max - min + 1)),
    chance: (probability) => probability > 0 && rng.next() < probability,
    pick: (items) => {
      if (items.length === 0) throw new Error('pick from an empty list');
      return items[Math.floor(rng.next() * items.length)] as (typeof items)[number];
    },
    hex: (length) => {
      let out = '';
      while (out.length < length) out += u32().toString(16).padStart(8, '0');
      return out.slice(0, length);
    },
    bigint: (min, max) => {
      const span = max - min + 1n;
      if (span <= 0n) throw new Error('empty bigint range');
      let bits = 0n;
      for (let i = 0; i < Math.ceil(span.toString(2).length / 32) + 1; i += 1) bits = (bits << 32n) | BigInt(u32());
      return min + (bits % span);
    },
  };
  return rng;
}

function cyrb128(text: string): [number, number, number, number] {
  let h1 = 1779033703;
  let h2 = 3144134277;
  let h3 = 1013904242;
  let h4 = 2773480762;
  for (let i = 0; i < text.length; i += 1) {
    const k = text.charCodeAt(i);
    h1 = h2 ^ Math.imul(h1 ^ k, 597399067);
    h2 = h3 ^ Math.imul(h2 ^ k, 2869860233);
    h3 = h4 ^ Math.imul(h3 ^ k, 951274213);
    h4 = h1 ^ Math.imul(h4 ^ k, 2716044179);
  }
  h1 = Math.imul(h3 ^ (h1 >>> 18), 597399067);
  h2 = Math.imul(h4 ^ (h2 >>> 22), 2869860233);
  h3 = Math.imul(h1 ^ (h3 >>> 17), 951274213);
  h4 = Math.imul(h2 ^ (h4 >>> 19), 2716044179);
  h1 ^= h2 ^ h3 ^ h4;
  h2 ^= h1;
  h3 ^= h1;
  h4 ^= h1;
  return [h1 >>> 0, h2 >>> 0, h3 >>> 0, h4 >>> 0];
}

// ---- the wire shapes ---------------------------------------------------------------------------------------------

/**
 * One transaction exactly as Cas sends it (field order of the public sample). Money is bigint here and becomes a JSON
 * number in `toCasJson`; a LosslessNumber account number is written as a JSON number, as in Cas's own example.
 */
export interface CasTransaction {
  readonly id: string;
  readonly transactionCode: string | null;
  readonly reference: string | null;
  readonly transactionDate: string;
  readonly transactionDateTime: string;
  readonly bookingDate: string | null;
  readonly amount: bigint;
  readonly description: string | null;
  readonly runningBalance: bigint | null;
  readonly accountNumber: string | LosslessNumber;
  readonly virtualAccountNumber: string | null;
  readonly virtualAccountName: string | null;
  readonly paymentChannel: string | null;
  readonly counterAccountNumber: string | null;
  readonly counterAccountName: string | null;
  readonly counterAccountBankId: string | null;
  readonly counterAccountBankName: string | null;
  readonly paymentMeta: Readonly<Record<string, string>> | null;
  readonly fiId: string;
  readonly fiName: string;
  readonly fiServiceId: string;
  readonly fiServiceName: string;
  readonly currency: 'VND';
}

export interface CasWebhookError {
  readonly errorType: string;
  readonly errorCode: string;
  readonly errorMessage: string;
}

export interface CasWebhook {
  readonly environment: 'dev';
  readonly webhookType: 'TRANSACTIONS' | 'GRANT';
  readonly webhookCode: string;
  readonly error: CasWebhookError | null;
  readonly grantId: string | null;
  readonly transaction?: CasTransaction;
}

/** Cas's JSON: bigint and LosslessNumber values become JSON numbers with every digit. */
export function toCasJson(value: unknown): string {
  const text = stringify(value);
  if (text === undefined) throw new Error('value has no JSON form');
  return text;
}

export function transactionWebhook(transaction: CasTransaction, grantId: string | null): CasWebhook {
  return {
    environment: 'dev',
    webhookType: 'TRANSACTIONS',
    webhookCode: 'DEFAULT_UPDATE',
    error: null,
    grantId,
    transaction,
  };
}

/** A GRANT webhook (the link's state changed), e.g. ERROR with GRANT_LOGIN_REQUIRED. */
export function grantWebhook(grantId: string, webhookCode: string, error: CasWebhookError | null = null): CasWebhook {
  return { environment: 'dev', webhookType: 'GRANT', webhookCode, error, grantId };
}

// ---- banks and accounts ------------------------------------------------------------------------------------------

export interface SimBankInfo {
  readonly fiId: string;
  readonly fiName: string;
  readonly fiServiceId: string;
  readonly fiServiceName: string;
  /** Napas BIN, used as counterAccountBankId. */
  readonly bin: string;
  /** Books late and weekend transactions on the next working day. */
  readonly bookingNextWorkingDay: boolean;
  /** Some banks send no reference at all. */
  readonly sendsReference: boolean;
}

/** The first one is the bank of Cas's public sample, with its ids. */
export const SIM_BANKS: readonly SimBankInfo[] = [
  {
    fiId: '3c26a8ed-efb5-11ed-8620-0ae7e48c82d8',
    fiName: 'VietinBank',
    fiServiceId: '433f71c4-efb5-11ed-8620-0ae7e48c82d8',
    fiServiceName: 'VietinBank iPay - Official API',
    bin: '970415',
    bookingNextWorkingDay: false,
    sendsReference: false,
  },
  {
    fiId: '5d1a9c3e-efb5-11ed-8620-0ae7e48c82d8',
    fiName: 'Vietcombank',
    fiServiceId: '61b7e2f0-efb5-11ed-8620-0ae7e48c82d8',
    fiServiceName: 'Vietcombank - Official API',
    bin: '970436',
    bookingNextWorkingDay: true,
    sendsReference: true,
  },
  {
    fiId: '7e4b0d12-efb5-11ed-8620-0ae7e48c82d8',
    fiName: 'Techcombank',
    fiServiceId: '82c5f6a4-efb5-11ed-8620-0ae7e48c82d8',
    fiServiceName: 'Techcombank - Business Banking',
    bin: '970407',
    bookingNextWorkingDay: false,
    sendsReference: true,
  },
  {
    fiId: '9f6e1a27-efb5-11ed-8620-0ae7e48c82d8',
    fiName: 'MB Bank',
    fiServiceId: 'a3d8b9c6-efb5-11ed-8620-0ae7e48c82d8',
    fiServiceName: 'MB Bank - Official API',
    bin: '970422',
    bookingNextWorkingDay: true,
    sendsReference: true,
  },
  {
    fiId: 'b47c2e38-efb5-11ed-8620-0ae7e48c82d8',
    fiName: 'ACB',
    fiServiceId: 'c59a3f4b-efb5-11ed-8620-0ae7e48c82d8',
    fiServiceName: 'ACB ONE Biz',
    bin: '970416',
    bookingNextWorkingDay: false,
    sendsReference: true,
  },
];

const COUNTERPARTY_BANKS = [
  { bin: '970415', name: 'VietinBank' },
  { bin: '970436', name: 'Vietcombank' },
  { bin: '970407', name: 'Techcombank' },
  { bin: '970422', name: 'MB Bank' },
  { bin: '970416', name: 'ACB' },
  { bin: '970418', name: 'BIDV' },
  { bin: '970405', name: 'Agribank' },
  { bin: '970432', name: 'VPBank' },
] as const;

const PEOPLE = [
  'NGUYỄN VĂN AN',
  'TRẦN THỊ BÍCH NGỌC',
  'LÊ HOÀNG PHÚC',
  'PHẠM THỊ THU HƯƠNG',
  'ĐẶNG QUỐC BẢO',
  'VŨ MINH KHOA',
  'HOÀNG THỊ MỸ DUYÊN',
  'BÙI ĐỨC THẮNG',
  'CÔNG TY TNHH THƯƠNG MẠI HOÀNG GIA',
  'CÔNG TY CỔ PHẦN GIẢI PHÁP SỐ ÁNH DƯƠNG',
] as const;

const OWNERS = [
  'CÔNG TY TNHH CÀ PHÊ SÀI GÒN XANH',
  'HỘ KINH DOANH TIỆM BÁNH MÌ CÔ BA',
  'CÔNG TY CỔ PHẦN DU LỊCH HẠ LONG',
  'NGUYỄN THỊ LAN ANH',
  'CÔNG TY TNHH PHẦN MỀM ĐÀ NẴNG',
  'TRƯƠNG VĂN HIẾU',
] as const;

export interface SimAccount {
  readonly fiId: string;
  readonly fiName: string;
  readonly fiServiceId: string;
  readonly fiServiceName: string;
  /** Always a string: it can start with 0. */
  readonly accountNumber: string;
  /** How Cas writes it on the wire: a JSON number for some accounts (never for a leading 0). */
  readonly numericOnWire: boolean;
  readonly accountName: string;
  readonly currency: 'VND';
  /** The balance before the first transaction. */
  readonly openingBalance: bigint;
  /** Chronological (ties share a minute); grows through `appendTransactions`. */
  readonly transactions: readonly CasTransaction[];
}

export interface SimBankOptions {
  readonly seed: number | string;
  readonly accounts?: number;
  readonly transactionsPerAccount?: number;
  /** How many distinct banks the accounts spread over (round-robin); default min(3, accounts). */
  readonly banks?: number;
  /** Time of the first transaction of every account. */
  readonly start?: string | Date;
  /** Gap between consecutive transactions, in whole minutes, drawn up to this. */
  readonly maxGapMinutes?: number;
  /** Chance that a transaction shares the previous one's minute. */
  readonly tieRate?: number;
  /** Chance that a transaction is sent with runningBalance null. */
  readonly nullRunningBalanceRate?: number;
  /** Chance that an account number starts with 0. */
  readonly leadingZeroRate?: number;
  /** Chance that an account without a leading 0 is sent as a JSON number. */
  readonly numericAccountNumberRate?: number;
  /** Account 1 reuses account 0's number at another bank (an account is bank + number). */
  readonly sharedAccountNumber?: boolean;
  readonly openingBalance?: { readonly min: bigint; readonly max: bigint };
  /** Chance that a bank reference repeats the previous one ("may be duplicated"). */
  readonly duplicateReferenceRate?: number;
}

export interface SimBank {
  readonly seed: number | string;
  readonly accounts: readonly SimAccount[];
  findAccount(fiId: string, accountNumber: string): SimAccount | undefined;
  /** Every account's transactions, account by account. */
  allTransactions(): { account: SimAccount; transaction: CasTransaction }[];
}

interface AccountState {
  readonly rng: Rng;
  readonly bank: SimBankInfo;
  readonly options: ResolvedOptions;
  readonly transactions: CasTransaction[];
  balance: bigint;
  lastAtMs: number;
  lastReference: string | null;
  serial: number;
}

type ResolvedOptions = Required<Omit<SimBankOptions, 'start'>> & { readonly startMs: number };

/** Internal state stays off the public objects so tests can compare accounts as plain data. */
const states = new WeakMap<SimAccount, AccountState>();

const MINUTE = 60_000;
const OFFSET_MS = 7 * 60 * MINUTE; // Vietnam is UTC+7 all year

export function generateBank(options: SimBankOptions): SimBank {
  const accountsCount = options.accounts ?? 3;
  const resolved: ResolvedOptions = {
    seed: options.seed,
    accounts: accountsCount,
    transactionsPerAccount: options.transactionsPerAccount ?? 20,
    banks: Math.max(1, Math.min(options.banks ?? Math.min(3, accountsCount), SIM_BANKS.length)),
    startMs: floorMinute(new Date(options.start ?? '2024-01-02T08:00:00+07:00').getTime()),
    maxGapMinutes: options.maxGapMinutes ?? 180,
    tieRate: options.tieRate ?? 0.15,
    nullRunningBalanceRate: options.nullRunningBalanceRate ?? 0,
    leadingZeroRate: options.leadingZeroRate ?? 0.4,
    numericAccountNumberRate: options.numericAccountNumberRate ?? 0.5,
    sharedAccountNumber: options.sharedAccountNumber ?? true,
    openingBalance: options.openingBalance ?? { min: 0n, max: 50_000_000n },
    duplicateReferenceRate: options.duplicateReferenceRate ?? 0.02,
  };
  if (Number.isNaN(resolved.startMs)) throw new Error('start is not a date');

  const accounts: SimAccount[] = [];
  for (let index = 0; index < accountsCount; index += 1) {
    const rng = createRng(resolved.seed, 'account', index);
    const bank = SIM_BANKS[index % resolved.banks] as SimBankInfo;
    const shared = index === 1 && resolved.sharedAccountNumber && resolved.banks > 1 ? accounts[0] : undefined;
    const accountNumber = shared?.accountNumber ?? newAccountNumber(rng, resolved.leadingZeroRate);
    const transactions: CasTransaction[] = [];
    const account: SimAccount = {
      fiId: bank.fiId,
      fiName: bank.fiName,
      fiServiceId: bank.fiServiceId,
      fiServiceName: bank.fiServiceName,
      accountNumber,
      numericOnWire: !accountNumber.startsWith('0') && rng.chance(resolved.numericAccountNumberRate),
      accountName: rng.pick(OWNERS),
      currency: 'VND',
      openingBalance: rng.bigint(resolved.openingBalance.min, resolved.openingBalance.max),
      transactions,
    };
    states.set(account, {
      rng,
      bank,
      options: resolved,
      transactions,
      balance: account.openingBalance,
      lastAtMs: resolved.startMs,
      lastReference: null,
      serial: 0,
    });
    accounts.push(account);
    for (let i = 0; i < resolved.transactionsPerAccount; i += 1) {
      const state = stateOf(account);
      const at = i === 0 ? state.lastAtMs : nextTime(state);
      pushTransaction(account, state, at);
    }
  }

  return {
    seed: resolved.seed,
    accounts,
    findAccount: (fiId, accountNumber) => accounts.find((a) => a.fiId === fiId && a.accountNumber === accountNumber),
    allTransactions: () =>
      accounts.flatMap((account) => account.transactions.map((transaction) => ({ account, transaction }))),
  };
}

export type SimClock = Date | (() => Date) | { now(): Date };

/**
 * New transactions happen now: at the clock's minute, or at the last transaction's minute if the clock is behind it,
 * so the history stays chronological. Returns the new transactions.
 */
export function appendTransactions(account: SimAccount, n: number, clock: SimClock): CasTransaction[] {
  const state = stateOf(account);
  const nowMs = floorMinute(readClock(clock).getTime());
  const added: CasTransaction[] = [];
  for (let i = 0; i < n; i += 1) added.push(pushTransaction(account, state, Math.max(state.lastAtMs, nowMs)));
  return added;
}

/** The bank's true balance after every transaction so far (known even where runningBalance was left null). */
export function bankBalance(account: SimAccount): bigint {
  return stateOf(account).balance;
}

export const accountKey = (account: Pick<SimAccount, 'fiId' | 'accountNumber'>): string =>
  `${account.fiId}:${account.accountNumber}`;

function stateOf(account: SimAccount): AccountState {
  const state = states.get(account);
  if (!state) throw new Error('not an account of generateBank');
  return state;
}

function readClock(clock: SimClock): Date {
  if (clock instanceof Date) return clock;
  return typeof clock === 'function' ? clock() : clock.now();
}

function nextTime(state: AccountState): number {
  if (state.rng.chance(state.options.tieRate)) return state.lastAtMs;
  return state.lastAtMs + state.rng.int(1, Math.max(1, state.options.maxGapMinutes)) * MINUTE;
}

function pushTransaction(account: SimAccount, state: AccountState, atMs: number): CasTransaction {
  const { rng, bank } = state;
  // Debits never overdraw: the chain stays a plausible bank statement.
  const credit = state.balance < 10_000n || rng.chance(0.55);
  const magnitude = amountMagnitude(rng, credit ? null : state.balance);
  const amount = credit ? magnitude : -magnitude;
  state.balance += amount;
  state.lastAtMs = atMs;
  state.serial += 1;

  const local = new Date(atMs + OFFSET_MS).toISOString();
  const transactionDate = local.slice(0, 10);
  const story = describe(rng, credit, transactionDate);
  const counterBank = story.counterparty ? rng.pick(COUNTERPARTY_BANKS) : null;
  const virtual = credit && story.counterparty && rng.chance(0.1);
  let reference: string | null = null;
  if (bank.sendsReference) {
    reference =
      state.lastReference !== null && rng.chance(state.options.duplicateReferenceRate)
        ? state.lastReference
        : `FT${transactionDate.slice(2, 4)}${dayOfYear(transactionDate)}${rng.hex(8).toUpperCase()}`;
    state.lastReference = reference;
  }

  const transaction: CasTransaction = {
    id: rng.hex(32),
    transactionCode: alphanumeric(rng, 15),
    reference,
    transactionDate,
    transactionDateTime: `${local.slice(0, 16)}:00+07:00`,
    bookingDate: bank.bookingNextWorkingDay ? bookingDateOf(local) : transactionDate,
    amount,
    description: story.description,
    runningBalance: rng.chance(state.options.nullRunningBalanceRate) ? null : state.balance,
    accountNumber: account.numericOnWire ? new LosslessNumber(account.accountNumber) : account.accountNumber,
    virtualAccountNumber: virtual ? `${bank.bin.slice(2)}${String(rng.int(10_000_000, 99_999_999))}` : null,
    virtualAccountName: virtual ? account.accountName : null,
    paymentChannel: story.channel,
    counterAccountNumber: counterBank ? String(rng.int(1_000_000_000, 9_999_999_999)) : null,
    counterAccountName: counterBank ? story.counterparty : null,
    counterAccountBankId: counterBank?.bin ?? null,
    counterAccountBankName: counterBank?.name ?? null,
    paymentMeta: story.orderCode ? { orderCode: story.orderCode } : null,
    fiId: account.fiId,
    fiName: account.fiName,
    fiServiceId: account.fiServiceId,
    fiServiceName: account.fiServiceName,
    currency: 'VND',
  };
  state.transactions.push(transaction);
  return transaction;
}

/** Mostly round thousands, as VND amounts are; now and then an odd fee-like amount. */
function amountMagnitude(rng: Rng, ceiling: bigint | null): bigint {
  const roll = rng.next();
  let value: bigint;
  if (roll < 0.1) value = BigInt(rng.int(1, 99_999));
  else if (roll < 0.7) value = BigInt(rng.int(10, 500)) * 1000n;
  else value = BigInt(rng.int(500, 20_000)) * 1000n;
  if (ceiling !== null && value > ceiling) value = ceiling > 1000n ? (ceiling / 1000n) * 1000n : ceiling;
  return value > 0n ? value : 1n;
}

interface Story {
  readonly description: string;
  readonly channel: string | null;
  readonly counterparty: string | null;
  readonly orderCode: string | null;
}

function describe(rng: Rng, credit: boolean, date: string): Story {
  const month = Number.parseInt(date.slice(5, 7), 10);
  const person = rng.pick(PEOPLE);
  const order = `DH${rng.int(100_000, 999_999)}`;
  const transfer = (description: string, withOrder = false): Story => ({
    description,
    channel: rng.pick(['Napas247', 'Nội bộ', 'Citad', 'Napas247'] as const),
    counterparty: person,
    orderCode: withOrder ? order : null,
  });
  const own = (description: string, channel: string | null = null): Story => ({
    description,
    channel,
    counterparty: null,
    orderCode: null,
  });
  const credits = [
    () => transfer(`${person} chuyển tiền`),
    () => transfer(`Thanh toán đơn hàng ${order}`, true),
    () => transfer(`CT nhanh 247 - ${person} chuyen khoan hoàn ứng`),
    () => transfer(`Nhận lương tháng ${month}`),
    () => own(`Lãi tiền gửi tháng ${month}`),
    () => transfer(`Hoàn tiền đơn hàng ${order}`, true),
  ];
  const debits = [
    () => transfer(`Thanh toán hóa đơn tiền điện tháng ${month}`),
    () => transfer('Chuyển tiền học phí học kỳ'),
    () => own(`Phí quản lý tài khoản tháng ${month}`),
    () => own('Rút tiền mặt tại ATM Hoàn Kiếm', null),
    () => own('Nạp tiền điện thoại Viettel', 'Nội bộ'),
    () => transfer(`Trả tiền nhà tháng ${month} cho ${person}`),
    () => own('Mua hàng tại Bách Hóa Xanh'),
  ];
  return rng.pick(credit ? credits : debits)();
}

function newAccountNumber(rng: Rng, leadingZeroRate: number): string {
  const length = rng.int(9, 13);
  let digits = rng.chance(leadingZeroRate) ? '0' : String(rng.int(1, 9));
  while (digits.length < length) digits += String(rng.int(0, 9));
  return digits;
}

function alphanumeric(rng: Rng, length: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  let out = '';
  for (let i = 0; i < length; i += 1) out += alphabet[rng.int(0, alphabet.length - 1)];
  return out;
}

/** After 17:00 or on a weekend, some banks book on the next working day. */
function bookingDateOf(localIso: string): string {
  const day = new Date(`${localIso.slice(0, 10)}T00:00:00Z`);
  const hour = Number.parseInt(localIso.slice(11, 13), 10);
  if (hour >= 17) day.setUTCDate(day.getUTCDate() + 1);
  while (day.getUTCDay() === 0 || day.getUTCDay() === 6) day.setUTCDate(day.getUTCDate() + 1);
  return day.toISOString().slice(0, 10);
}

function dayOfYear(date: string): string {
  const start = Date.UTC(Number.parseInt(date.slice(0, 4), 10), 0, 1);
  const day = Math.floor((Date.parse(`${date}T00:00:00Z`) - start) / 86_400_000) + 1;
  return String(day).padStart(3, '0');
}

const floorMinute = (ms: number): number => Math.floor(ms / MINUTE) * MINUTE;
