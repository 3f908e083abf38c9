import { CompiledQuery, type Kysely, type RawBuilder, sql } from 'kysely';
import type { ReadModelTables } from './tables';

/**
 * A projection's tables in one schema: the live one (`ledger`), a rebuild's (`ledger_rebuild`) or a verify's scratch
 * schema (`ledger_verify_<hex>`). The query builder is bound to the schema (kysely's withSchema); raw SQL names
 * its tables through `table`, since withSchema does not reach into `sql` templates.
 */
export interface ReadModel {
  readonly db: Kysely<ReadModelTables>;
  readonly schema: string;
  /** `"<schema>"."<table>"`, for raw SQL. */
  readonly table: (name: keyof ReadModelTables) => RawBuilder<unknown>;
  /**
   * Appends rows to a table with COPY, when the connection can (a PostgreSQL server): `data` is the rows in COPY's
   * text format as UTF-8 bytes, or in its binary format, in `columns` order. Absent otherwise (PGlite): write with INSERT.
   */
  readonly copyRows?: (name: keyof ReadModelTables, columns: readonly string[], data: Uint8Array, format?: 'text' | 'binary') => Promise<void>;
}

/**
 * The read model in `schema` over a connection, pool or transaction of any kysely instance: the one place where the
 * tables' schema is named at run time (the one place that takes an untyped kysely instance).
 */
export function readModelIn(db: Kysely<any>, schema: string, { copy = false }: { copy?: boolean } = {}): ReadModel {
  const table = (name: keyof ReadModelTables) => sql.table(`${schema}.${name}`);
  const copyRows = async (name: keyof ReadModelTables, columns: readonly string[], data: Uint8Array, format: 'text' | 'binary' = 'text') => {
    const binary = format === 'binary' ? sql` with (format binary)` : sql``;
    const { sql: statement } = sql`copy ${table(name)} (${sql.join(columns.map((c) => sql.id(c)))}) from stdin${binary}`.compile(db);
    await db.executeQuery(CompiledQuery.raw(statement, [data]));
  };
  return { db: db.withSchema(schema), schema, table, ...(copy ? { copyRows } : {}) };
}
