import { v5 as uuidv5 } from 'uuid';

/** Fixed namespace of the ledger's name-based event ids (UUID v5): it must never change, or repeats would book twice. */
const EVENT_ID_NAMESPACE = '5b0c4c3e-7f1e-4a53-9d59-5c1f2a8e6b10';

/**
 * The id of the event a name stands for (`transaction:<Cas id>`, `conflict:…`, `body:…`, `grant-linked:…`, `heal:…`, `sweep:<date>`):
 * the same name always gives the same id, so the store recognises a repeat by its id.
 */
export const eventIdFor = (name: string): string => uuidv5(name, EVENT_ID_NAMESPACE);
