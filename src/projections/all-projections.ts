import { createGrantsProjection } from './grants.projection';
import { createLedgerProjection } from './ledger.projection';
import type { Projection } from './projection';

/** Every read model of the service: what the runners follow, and what rebuild and verify cover. */
export const allProjections = (): Projection[] => [createLedgerProjection(), createGrantsProjection()];
