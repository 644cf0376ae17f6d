import dns from 'node:dns/promises';
import fs from 'node:fs';
import net from 'node:net';
import { QmpError } from '../qmp/errors.ts';
import type { InetSocketAddress } from '../schema/generated/qapi-types.ts';

/** QEMU copies the port into a 33-byte buffer before it looks it up. */
const PORT_BYTES = 32;

/**
 * Where a TCP listener binds, as QEMU's inet_listen_saddr resolves it: the
 * address family the ipv4/ipv6 flags ask for, the port cut to 32 bytes,
 * `numeric` refusing names, getaddrinfo's refusals in its words.
 */
export async function inetListenOptions(address: InetSocketAddress): Promise<net.ListenOptions> {
  const family = addressFamily(address);
  const port = Buffer.from(address.port, 'utf8').subarray(0, PORT_BYTES).toString('utf8');
  const resolutionFailed = (reason: string) => new QmpError(`address resolution failed for ${address.host}:${port}: ${reason}`);
  if (address.numeric && !/^\d*$/.test(port)) throw resolutionFailed('Name or service not known');
  const listenOptions: net.ListenOptions = { port: servicePort(port, resolutionFailed) };
  // A listener on both families at once (one IPv6 socket) unless exactly one was asked for.
  if (family !== 0) listenOptions.ipv6Only = family === 6 && !(address.ipv4 === true && address.ipv6 === true);
  const host = address.host;
  if (host === '') {
    if (family !== 0) listenOptions.host = family === 6 ? '::' : '0.0.0.0';
    return listenOptions;
  }
  const literal = net.isIP(host);
  if (literal !== 0) {
    if (family !== 0 && literal !== family) throw resolutionFailed('Address family for hostname not supported');
    return { ...listenOptions, host };
  }
  if (address.numeric) throw resolutionFailed('Name or service not known');
  if (family === 0) return { ...listenOptions, host };
  try {
    const { address: resolved } = await dns.lookup(host, { family });
    return { ...listenOptions, host: resolved };
  } catch {
    throw resolutionFailed('Name or service not known');
  }
}

/** QEMU's inet_ai_family_from_address: 4, 6, or 0 for either. */
function addressFamily(address: InetSocketAddress): 0 | 4 | 6 {
  const { ipv4, ipv6 } = address;
  if (ipv4 === false && ipv6 === false) throw new QmpError('Cannot disable IPv4 and IPv6 at same time');
  if (ipv4 === true && ipv6 === true) return address.host === '' ? 6 : 0;
  if (ipv6 === true || ipv4 === false) return 6;
  if (ipv4 === true || ipv6 === false) return 4;
  return 0;
}

/**
 * The port getaddrinfo(3) makes of a service string, as QEMU passes it
 * through: strtoul's reading truncated to an int, where -1 means "not a
 * number, look the name up in /etc/services", then to 16 bits.
 */
function servicePort(service: string, resolutionFailed: (reason: string) => QmpError): number {
  const numeric = /^\s*([+-]?)(\d*)$/.exec(service);
  if (numeric && (numeric[2] !== '' || service === '')) {
    const digits = numeric[2] || '0';
    const magnitude = BigInt(digits);
    const overflow = magnitude > 0xffffffffffffffffn;
    const unsigned = overflow ? 0xffffffffffffffffn : numeric[1] === '-' ? (1n << 64n) - magnitude : magnitude;
    const asInt = Number(BigInt.asIntN(32, unsigned % (1n << 64n)));
    if (asInt !== -1) return asInt & 0xffff;
  }
  const named = lookUpService(service);
  if (named === undefined) {
    throw resolutionFailed('Servname not supported for ai_socktype');
  }
  return named;
}

function lookUpService(name: string): number | undefined {
  let table: string;
  try {
    table = fs.readFileSync('/etc/services', 'utf8');
  } catch {
    return undefined;
  }
  for (const line of table.split('\n')) {
    const [entry] = line.split('#');
    const fields = entry!.trim().split(/\s+/);
    const match = /^(\d+)\/tcp$/.exec(fields[1] ?? '');
    if (match && (fields[0] === name || fields.slice(2).includes(name))) return Number(match[1]);
  }
  return undefined;
}
