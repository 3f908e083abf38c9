import { v5 as uuidv5 } from 'uuid';
import { digest } from './digest';

/** Fixed namespace of the ledger's name-based event ids (UUID v5): it must never change, or repeats would book twice. */
const EVENT_ID_NAMESPACE = '5b0c4c3e-7f1e-4a53-9d59-5c1f2a8e6b10';
const NAMESPACE_BYTES = Buffer.from(EVENT_ID_NAMESPACE.replaceAll('-', ''), 'hex');

/**
 * The id of the event a name stands for (`transaction:<Cas id>`, `conflict:…`, `body:…`, `grant-linked:…`, `heal:…`, `sweep:<date>`):
 * the same name always gives the same id, so the store recognises a repeat by its id. RFC 4122 v5 computed here with
 * the namespace's bytes parsed once and hashed in one call with the name (one or two per webhook); equal to the uuid package's v5, which a property test checks.
 */
export function eventIdFor(name: string): string {
  // The uuid package refuses half a surrogate pair (encodeURIComponent throws) where a hash would replace it.
  if (!name.isWellFormed()) return uuidv5(name, EVENT_ID_NAMESPACE);
  const input = Buffer.allocUnsafe(NAMESPACE_BYTES.length + Buffer.byteLength(name, 'utf8'));
  NAMESPACE_BYTES.copy(input);
  input.write(name, NAMESPACE_BYTES.length, 'utf8');
  const hash = digest('sha1', input);
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
