/**
 * @module The inter-site fabric: what a site knows of the network between sites. Two implementations:
 * nats/ (real deployments, one nats-server per site) and memory/ (in-process, with a WAN model, for the
 * embedded default and the lab). Both pass test/fabric-conformance.
 *
 * Subjects (see docs/federation.md for the whole table):
 *   atoll.<site>.changes      the site's change-log batches (push, best effort)
 *   atoll.<site>.heartbeat    liveness, version and log head, every heartbeat interval
 *   atoll.<site>.rpc.<name>   request/reply services of that site (changes.since, http, ...)
 *   _INBOX_<site>.>           the site's reply subjects (only that site may subscribe)
 * What each site may publish and subscribe to is in permissions.ts.
 * Wildcards follow NATS: `*` matches one token, `>` the rest.
 */

export interface FabricMessage {
  subject: string;
  data: Uint8Array;
}

export type Unsubscribe = () => void;

export const FabricErrorCode = {
  Timeout: 'timeout',
  NoResponders: 'no_responders',
  Closed: 'closed',
  /** The site's fabric permissions forbid this subscribe, serve or request (see permissions.ts). */
  Permission: 'permission',
} as const;
export type FabricErrorCode = (typeof FabricErrorCode)[keyof typeof FabricErrorCode];

export class FabricError extends Error {
  readonly code: FabricErrorCode;
  constructor(code: FabricErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'FabricError';
  }
}

/**
 * The error a requester gets when the responder threw: the responder's message (one line), carried as
 * data, and a status (500). Both fabrics deliver this, never the responder's own error object.
 */
export class RemoteHandlerError extends Error {
  readonly subject: string;
  readonly status: number;
  constructor(subject: string, status: number, message: string) {
    super(message);
    this.name = 'RemoteHandlerError';
    this.subject = subject;
    this.status = status;
  }
}

/** A responder's error as a RemoteHandlerError carries it: one line (a NATS header value), at most 1 KiB. */
export const handlerErrorText = (e: unknown): string =>
  (e instanceof Error ? e.message : String(e)).replace(/[\r\n]+/g, ' ').slice(0, 1024) || 'error';

/** NATS's default `max_payload` (1 MiB): the largest message a fabric carries unless told otherwise. */
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;

/** One site's connection to the fabric. */
export interface Fabric {
  readonly site: string;
  /** The largest message (bytes) this fabric carries: a larger publish or request throws, a larger
   * reply is lost. NATS: the server's advertised `max_payload`. Senders split what they send by it. */
  readonly maxPayload: number;
  /** Fire and forget; may be lost (the change log's pull path repairs any loss). */
  publish(subject: string, data: Uint8Array): void;
  /** subscribe and serve throw FabricError Permission when the fabric enforces permissions and the
   * site may not subscribe to `subject` (a fabric that learns it only from its server logs it instead). */
  subscribe(subject: string, handler: (msg: FabricMessage) => void): Unsubscribe;
  /** Answers requests on `subject`. A thrown error reaches the caller as a RemoteHandlerError with its
   * message only; services that need typed errors use rpc.ts, which encodes them in the reply. */
  serve(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array> | Uint8Array): Unsubscribe;
  /** Rejects with FabricError: Timeout after timeoutMs, NoResponders when nobody serves the subject,
   * Permission when the site may not publish on it. */
  request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export const subjects = {
  changes: (site: string) => `atoll.${site}.changes`,
  allChanges: 'atoll.*.changes',
  heartbeat: (site: string) => `atoll.${site}.heartbeat`,
  allHeartbeats: 'atoll.*.heartbeat',
  rpc: (site: string, name: string) => `atoll.${site}.rpc.${name}`,
} as const;

/** The site named in an `atoll.<site>.…` subject. */
export function siteOfSubject(subject: string): string | undefined {
  const parts = subject.split('.');
  return parts[0] === 'atoll' ? parts[1] : undefined;
}

/** NATS subject matching: `*` one token, `>` one or more trailing tokens. */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const tok = p[i];
    if (tok === '>') return s.length > i;
    if (i >= s.length) return false;
    if (tok !== '*' && tok !== s[i]) return false;
  }
  return p.length === s.length;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
export const encodeJson = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));
export const decodeJson = <T>(b: Uint8Array): T => JSON.parse(dec.decode(b)) as T;
