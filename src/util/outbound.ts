/**
 * The one gate for requests comfyguard makes to URLs that users or configuration hand it
 * (webhooks, alerts, server URLs added at run time). A URL is checked twice: statically when it is
 * accepted (protocol, credentials, literal addresses in any spelling, metadata names), and again at
 * connect time on every address the name resolves to, so a DNS answer that changes between the
 * check and the request (rebinding) cannot reach a forbidden address. Redirects are never followed.
 */
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';

/** What the gate lets through beyond public addresses. Link-local and metadata addresses are never allowed. */
export interface OutboundPolicy {
  /** 127.0.0.0/8, ::1 and `localhost`: for local development and tests only. @default false */
  allowLoopback?: boolean;
  /** 10/8, 172.16/12, 192.168/16, 100.64/10 (CGNAT), fc00::/7. @default false */
  allowPrivate?: boolean;
}

/** Why a URL or an address was refused; stable, for error codes and logs. */
export type OutboundRefusal = 'bad_url' | 'bad_protocol' | 'credentials' | 'loopback' | 'private' | 'link_local' | 'metadata' | 'reserved';

/** A URL the gate will not call, with the reason as a stable code. Never names the address. */
export class OutboundRefusedError extends Error {
  readonly code = 'OUTBOUND_REFUSED';
  readonly reason: OutboundRefusal;
  constructor(reason: OutboundRefusal, message: string) {
    super(message);
    this.name = 'OutboundRefusedError';
    this.reason = reason;
  }
}

const MESSAGES: Record<OutboundRefusal, string> = {
  bad_url: 'is not a valid URL',
  bad_protocol: 'must be an http:// or https:// URL',
  credentials: 'must not carry a user name or password; use the webhook signature to authenticate comfyguard',
  loopback: 'points at this machine (loopback), which is refused unless loopback targets are allowed for local development',
  private: 'points at a private network address, which is refused unless private targets are allowed',
  link_local: 'points at a link-local address, which is always refused',
  metadata: 'points at a cloud metadata service, which is always refused',
  reserved: 'points at a reserved, unspecified or multicast address, which is always refused',
};

function refuse(reason: OutboundRefusal): OutboundRefusedError {
  return new OutboundRefusedError(reason, MESSAGES[reason]);
}

function blockList(v4: string[], v6: string[]): BlockList {
  const b = new BlockList();
  for (const s of v4) {
    const [net, bits] = s.split('/');
    b.addSubnet(net!, Number(bits), 'ipv4');
  }
  for (const s of v6) {
    const [net, bits] = s.split('/');
    b.addSubnet(net!, Number(bits), 'ipv6');
  }
  return b;
}

const LOOPBACK = blockList(['127.0.0.0/8'], ['::1/128']);
const LINK_LOCAL = blockList(['169.254.0.0/16'], ['fe80::/10']);
const PRIVATE = blockList(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '198.18.0.0/15'], ['fc00::/7']);
const RESERVED = blockList(
  ['0.0.0.0/8', '192.0.0.0/24', '192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4'],
  ['::/128', 'ff00::/8', '2001:db8::/32', '100::/64'],
);
/** Metadata services at addresses outside the link-local ranges (AWS IPv6, Alibaba, Oracle...). */
const METADATA_ADDRESSES = new Set(['fd00:ec2::254', '100.100.100.200', '192.0.0.192']);
const METADATA_NAMES = new Set(['metadata', 'metadata.google.internal', 'metadata.goog', 'instance-data', 'instance-data.ec2.internal', 'metadata.azure.internal']);

/** An IPv4 address carried inside an IPv6 one (mapped, NAT64, 6to4), or null. */
function embeddedV4(v6: string): string | null {
  const h = v6.toLowerCase();
  const dotted = /^(?:::ffff:|::ffff:0:|64:ff9b::|::)(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (dotted) return dotted[1]!;
  // Hex forms, as the URL parser writes them: ::ffff:7f00:1, 64:ff9b::7f00:1, 2002:7f00:1::.
  const hex = /^(?:::ffff:|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(h) ?? /^2002:([0-9a-f]{1,4}):([0-9a-f]{1,4})(?::|$)/.exec(h);
  if (!hex) return null;
  const hi = parseInt(hex[1]!, 16);
  const lo = parseInt(hex[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

/** The class of an IP address as the gate sees it; null for a public address. */
export function addressClass(address: string): Exclude<OutboundRefusal, 'bad_url' | 'bad_protocol' | 'credentials'> | null {
  const ip = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(ip);
  if (family === 0) return 'reserved';
  if (METADATA_ADDRESSES.has(ip.toLowerCase()) || ip === '169.254.169.254' || ip === '169.254.170.2') return 'metadata';
  if (family === 6) {
    const v4 = embeddedV4(ip);
    if (v4 !== null) return addressClass(v4);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  if (LOOPBACK.check(ip, type)) return 'loopback';
  if (LINK_LOCAL.check(ip, type)) return 'link_local';
  if (RESERVED.check(ip, type)) return 'reserved';
  if (PRIVATE.check(ip, type)) return 'private';
  return null;
}

/** Throws OutboundRefusedError when the policy does not allow this resolved address. */
export function checkAddress(address: string, policy: OutboundPolicy = {}): void {
  const cls = addressClass(address);
  if (cls === null) return;
  if (cls === 'loopback' && policy.allowLoopback) return;
  if (cls === 'private' && policy.allowPrivate) return;
  throw refuse(cls);
}

/**
 * Checks a URL without any network access: http(s) only, no credentials, no literal address or
 * name the policy refuses. The WHATWG parser has already turned `2130706433`, `0x7f.1` and `[::ffff:127.0.0.1]`
 * into canonical addresses. Returns the parsed URL.
 */
export function checkOutboundUrl(raw: string, policy: OutboundPolicy = {}): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refuse('bad_url');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw refuse('bad_protocol');
  if (url.username !== '' || url.password !== '') throw refuse('credentials');
  const host = url.hostname.replace(/^\[|\]$/g, '').replace(/\.$/, '').toLowerCase();
  if (host === '') throw refuse('bad_url');
  if (isIP(host) !== 0) {
    checkAddress(host, policy);
    return url;
  }
  if (METADATA_NAMES.has(host)) throw refuse('metadata');
  if (host === 'localhost' || host.endsWith('.localhost')) {
    if (!policy.allowLoopback) throw refuse('loopback');
  }
  return url;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `dns.lookup` replacement for sockets: resolves every address and refuses the connection when
 * any of them is forbidden (so a name cannot mix a public and a private answer).
 */
export function guardedLookup(policy: OutboundPolicy, resolve: typeof dnsLookup = dnsLookup) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) {
        callback(err, []);
        return;
      }
      const list = addresses as LookupAddress[];
      try {
        if (list.length === 0) throw refuse('bad_url');
        for (const a of list) checkAddress(a.address, policy);
      } catch (e) {
        callback(e as NodeJS.ErrnoException, []);
        return;
      }
      if (options.all) callback(null, list);
      else callback(null, list[0]!.address, list[0]!.family);
    });
  };
}

/** A fetch that only goes where the policy allows, never follows redirects and is closable. */
export interface OutboundFetch {
  (url: string, init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }): Promise<{
    status: number;
    headers: { get(name: string): string | null };
    arrayBuffer(): Promise<ArrayBuffer>;
  }>;
  /** Closes the connection pool. */
  close(): Promise<void>;
}

/**
 * Creates the guarded fetch. A 3xx answer is returned as it is (the caller treats it as not
 * delivered); the request is never repeated to the `Location`.
 *
 * @example
 * const send = createOutboundFetch({ allowLoopback: false });
 * await send('https://hooks.example.com/x', { method: 'POST', headers: {}, body: '{}' });
 */
export function createOutboundFetch(policy: OutboundPolicy = {}, opts: { resolve?: typeof dnsLookup } = {}): OutboundFetch {
  const agent = new Agent({ connect: { lookup: guardedLookup(policy, opts.resolve) as never }, connections: 64 });
  const call = async (url: string, init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }) => {
    checkOutboundUrl(url, policy);
    try {
      return await undiciFetch(url, { ...init, redirect: 'manual', dispatcher: agent });
    } catch (err) {
      // The refusal from the lookup arrives wrapped as a fetch "cause".
      const cause = (err as { cause?: unknown }).cause;
      if (cause instanceof OutboundRefusedError) throw cause;
      throw err;
    }
  };
  return Object.assign(call, { close: () => agent.close() });
}

/**
 * A URL as it may be shown or logged: user name and password removed (the rest kept, so an
 * operator can still tell servers apart). Text that is not a URL comes back unchanged.
 */
export function redactUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Not parseable: still cut any "user:pass@" that looks like one.
    return raw.replace(/\/\/[^/@\s]*@/g, '//');
  }
  if (url.username === '' && url.password === '') return raw;
  url.username = '';
  url.password = '';
  const s = url.toString();
  // URL() adds a trailing slash to a bare origin; keep the caller's spelling.
  return raw.endsWith('/') || url.pathname !== '/' ? s : s.replace(/\/$/, '');
}
