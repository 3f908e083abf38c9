import { timingSafeEqual } from 'node:crypto';
import ipaddr from 'ipaddr.js';
import { digest } from '../../application/digest';

/**
 * Cas signs nothing: a long secret in the webhook URL (or a header) is the only proof of origin, compared in
 * constant time (plus an optional allowlist of source networks, addressMatcher). The expected secret's digest is
 * computed once; each request hashes only what it presents.
 */
export function tokenMatcher(expected: string): (presented: string | undefined) => boolean {
  // Hashing first gives equal lengths, so the comparison time says nothing about the secret's length.
  const want = digest('sha256', expected);
  return (presented) => presented !== undefined && timingSafeEqual(want, digest('sha256', presented));
}

export type AddressMatcher = (address: string) => boolean;

/** Whether a source address lies in one of the allowed IPs or CIDR ranges (WEBHOOK_ALLOWED_IPS). */
export function addressMatcher(ranges: readonly string[]): AddressMatcher {
  const parsed = ranges.map((range) => {
    if (range.includes('/')) return ipaddr.parseCIDR(range);
    const address = ipaddr.parse(range);
    return [address, address.kind() === 'ipv4' ? 32 : 128] as [ipaddr.IPv4 | ipaddr.IPv6, number];
  });
  return (text) => {
    if (!ipaddr.isValid(text)) return false;
    let address = ipaddr.parse(text);
    // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d.
    if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
      address = (address as ipaddr.IPv6).toIPv4Address();
    }
    return parsed.some(([net, bits]) => address.kind() === net.kind() && address.match([net, bits] as never));
  };
}
