import ipaddr from 'ipaddr.js';

/** Whether HOST only listens on this machine: a loopback address or the name localhost. */
export function isLoopbackHost(host: string): boolean {
  const name = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (!ipaddr.isValid(name)) return false;
  const address = ipaddr.parse(name);
  if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (address as ipaddr.IPv6).toIPv4Address().range() === 'loopback';
  }
  return address.range() === 'loopback';
}

export interface Exposure {
  readonly host: string;
  readonly webhookToken: string | undefined;
  readonly apiToken: string | undefined;
  readonly liveKeys: number;
  readonly allowInsecure: boolean;
}

/**
 * Closed by default where it can be reached: on an address other machines can reach, the service starts only with
 * the webhook token and at least one way in for API callers (a live key or API_TOKEN), unless ALLOW_INSECURE=true
 * says the operator means it. Returns why it must not start, or null.
 */
export function exposureRefusal(e: Exposure): string | null {
  if (e.allowInsecure || isLoopbackHost(e.host)) return null;
  const missing = [
    ...(e.webhookToken ? [] : ['WEBHOOK_TOKEN is not set (anyone could book transactions)']),
    ...(e.apiToken || e.liveKeys > 0
      ? []
      : ['there is no API key: set API_TOKEN, or make one with `npm run ledger -- keys create --role admin --name <label>`']),
  ];
  if (missing.length === 0) return null;
  return (
    `refusing to start: HOST=${e.host} can be reached from other machines, but ${missing.join('; and ')}. ` +
    'Set them, listen on 127.0.0.1, or set ALLOW_INSECURE=true to start open anyway.'
  );
}
