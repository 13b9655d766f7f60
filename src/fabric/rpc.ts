/**
 * @module One shape for every inter-site request/reply service (`atoll.<site>.rpc.<name>`). A service
 * is declared once with `defineRpc<Req, Rep>({ name, version })`; both ends then go through it:
 *
 *   request  `{ v, ...req }`                      (flat, so that a signature over it covers `v`)
 *   reply    `{ v, ok: true, result }`  or  `{ v, ok: false, error: { code, status, message, ... } }`
 *
 * The server refuses a request of another version and the caller refuses a reply of another version,
 * each with an error naming both versions. A CloudError thrown by the handler travels as data and is
 * thrown again at the caller with the same status and message; any other failure is a 500. A timeout,
 * no responder or a closed fabric is a 503 naming the target site. Over the memory and NATS fabrics the
 * caller sees the same result for each of these (test/fabric-conformance.test.ts).
 *
 * A service declared with `bytes: true` (image data, services/image/remote-bytes.ts) answers with a
 * result whose `data` field is a Uint8Array; that reply travels as one frame, a zero byte, the length
 * of the JSON envelope (u32, big-endian), the envelope without `data`, then the bytes as they are
 * (no base64, so a chunk costs its own size on the link). Errors stay plain JSON.
 *
 * Signing stays with the caller's protocol: `seal` gets the whole request (with `v`) just before it is
 * encoded, e.g. MessageSigner.sign (federation/signed.ts), and the handler verifies what it received.
 */
import type { ErrorData } from '../core/errors.ts';
import { CloudError, SiteUnavailable, TooLarge } from '../core/errors.ts';
import type { Fabric, Unsubscribe } from './fabric.ts';
import { FabricError, decodeJson, encodeJson, subjects } from './fabric.ts';

export const RpcErrorCode = {
  /** The handler threw a CloudError: its status, message and detail type travel as they were. */
  Cloud: 'cloud',
  /** The handler failed otherwise: a 500 (the server logs the cause if it was told how). */
  Internal: 'internal',
  /** The request was of another version of the service than the server speaks. */
  Version: 'version_mismatch',
  /** The request was not a JSON object. */
  Malformed: 'malformed',
} as const;
export type RpcErrorCode = (typeof RpcErrorCode)[keyof typeof RpcErrorCode];

/** An error as it crosses the fabric. */
export interface RpcErrorData extends ErrorData {
  code: RpcErrorCode;
}

export type RpcReply<Rep> =
  { v: number; ok: true; result: Rep } | { v: number; ok: false; error: RpcErrorData };

/** A request as sent: the caller's fields plus the version. */
export type RpcRequest<Req> = Req & { v: number };

/** The two ends of a call speak different versions of a service. A 503 naming the other site. */
export class RpcVersionMismatch extends CloudError {
  readonly site: string;
  constructor(site: string, message: string) {
    super(503, message);
    this.site = site;
  }
}

/** A CloudError the handler at `site` threw, thrown again at the caller (same status and message). */
export class RemoteCloudError extends CloudError {
  readonly site: string;
  readonly code: RpcErrorCode;
  constructor(site: string, e: RpcErrorData) {
    super(e.status, e.message, {
      retryable: e.retryable,
      ...(e.detailType ? { detailType: e.detailType } : {}),
    });
    this.site = site;
    this.code = e.code;
    // The remote class name, for logs and toData (a remote NotFound stays a NotFound there).
    this.name = e.type;
  }
}

export interface RpcDefinition {
  /** The service name: the subject is `atoll.<site>.rpc.<name>`. */
  name: string;
  /** The protocol version both ends must speak (docs/federation.md). */
  version: number;
  /** Results carry raw bytes in `data` (a Uint8Array), sent after the envelope (see the module). */
  bytes?: boolean;
}

export interface RpcCallOptions<Req> {
  timeoutMs: number;
  /** Another subject of the target than `atoll.<target>.rpc.<name>` (e.g. one host's own subject). */
  subject?: string;
  /** Signs the request (with `v`) in place, just before it is encoded. */
  seal?: (req: RpcRequest<Req>) => unknown;
  /** Called once the request is on its way (after the size check). */
  sent?: () => void;
  /** Why the target was not reached, given the FabricError code (or the error's text): the text of the
   * 503 naming the target. Default `<name> request <code>`. */
  unreachable?: (why: string) => string;
  /** The error for a request over the fabric's max payload. Default: a 413 naming the target. */
  tooLarge?: (bytes: number, limit: number) => CloudError;
}

export interface RpcServeOptions {
  /** Another subject (pattern) than `atoll.<site>.rpc.<name>`, e.g. `atoll.<site>.rpc.host.*`. */
  subject?: string;
  /** The CloudError a failure that is not one becomes (log it here). Default: a 500 naming the site. */
  internal?: (e: unknown) => CloudError;
}

export interface Rpc<Req, Rep> extends RpcDefinition {
  subject(site: string): string;
  /** Calls `target`; resolves with the handler's result or throws a CloudError (see the module). */
  call(fabric: Fabric, target: string, req: Req, opts: RpcCallOptions<Req>): Promise<Rep>;
  /** Serves this site's end; the handler gets the request as sent (its version already checked). */
  serve(
    fabric: Fabric,
    handler: (req: RpcRequest<Req>) => Rep | Promise<Rep>,
    opts?: RpcServeOptions,
  ): Unsubscribe;
}

const isObject = (x: unknown): x is Record<string, unknown> =>
  typeof x === 'object' && x !== null && !Array.isArray(x);

const errorOf = (e: CloudError, code: RpcErrorCode): RpcErrorData => ({ code, ...e.toData() });

/** First byte of a reply frame with raw bytes; a JSON reply starts with `{`. */
const FRAME = 0;

/** An ok reply whose result has `data: Uint8Array`, as one frame (see the module). */
function encodeFrame(version: number, result: unknown): Uint8Array {
  const { data, ...rest } = result as { data: Uint8Array };
  if (!(data instanceof Uint8Array)) return encodeJson({ v: version, ok: true, result });
  const head = encodeJson({ v: version, ok: true, result: rest });
  const out = Buffer.allocUnsafe(5 + head.byteLength + data.byteLength);
  out[0] = FRAME;
  out.writeUInt32BE(head.byteLength, 1);
  out.set(head, 5);
  out.set(data, 5 + head.byteLength);
  return out;
}

/** The reply as an object: a frame's bytes go back into `result.data` (a view, not a copy). */
function decodeReply(raw: Uint8Array): unknown {
  if (raw[0] !== FRAME) return decodeJson<unknown>(raw);
  if (raw.byteLength < 5) throw new Error('short frame');
  const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  const len = buf.readUInt32BE(1);
  if (5 + len > buf.byteLength) throw new Error('short frame');
  const reply = decodeJson<unknown>(buf.subarray(5, 5 + len));
  if (isObject(reply) && isObject(reply.result)) reply.result.data = buf.subarray(5 + len);
  return reply;
}

export function defineRpc<Req extends object, Rep>(def: RpcDefinition): Rpc<Req, Rep> {
  const { name, version } = def;
  const binary = def.bytes === true;
  const subject = (site: string) => subjects.rpc(site, name);
  const mismatch = (site: string, theirs: unknown) =>
    new RpcVersionMismatch(
      site,
      `Site ${site} answered in version ${String(theirs)} of the ${name} protocol; this site speaks version ${version}.`,
    );

  async function call(fabric: Fabric, target: string, req: Req, opts: RpcCallOptions<Req>): Promise<Rep> {
    const msg = { ...req, v: version } as RpcRequest<Req>;
    opts.seal?.(msg);
    const data = encodeJson(msg);
    if (data.byteLength > fabric.maxPayload)
      throw (
        opts.tooLarge?.(data.byteLength, fabric.maxPayload) ??
        new TooLarge(
          `The ${name} request to ${target} is too large (${data.byteLength} bytes, over the fabric's limit of ${fabric.maxPayload}).`,
        )
      );
    opts.sent?.();
    let raw: Uint8Array;
    try {
      raw = await fabric.request(opts.subject ?? subject(target), data, opts.timeoutMs);
    } catch (e) {
      const why = e instanceof FabricError ? e.code : String(e);
      throw new SiteUnavailable(target, opts.unreachable?.(why) ?? `${name} request ${why}`);
    }
    let reply: unknown;
    try {
      reply = binary ? decodeReply(raw) : decodeJson<unknown>(raw);
    } catch {
      reply = undefined;
    }
    // A refusal of our version comes in the server's version: say what it said.
    if (
      isObject(reply) &&
      reply.ok === false &&
      isObject(reply.error) &&
      reply.error.code === RpcErrorCode.Version
    )
      throw new RpcVersionMismatch(target, String(reply.error.message));
    if (!isObject(reply) || reply.v !== version || typeof reply.ok !== 'boolean')
      throw mismatch(target, isObject(reply) ? reply.v : undefined);
    const r = reply as RpcReply<Rep>;
    if (r.ok) return r.result;
    throw new RemoteCloudError(target, r.error);
  }

  function serve(
    fabric: Fabric,
    handler: (req: RpcRequest<Req>) => Rep | Promise<Rep>,
    opts: RpcServeOptions = {},
  ): Unsubscribe {
    const fail = (error: RpcErrorData): RpcReply<Rep> => ({ v: version, ok: false, error });
    return fabric.serve(opts.subject ?? subject(fabric.site), async (data) => {
      let reply: RpcReply<Rep>;
      let req: unknown;
      try {
        req = decodeJson<unknown>(data);
      } catch {
        req = undefined;
      }
      if (!isObject(req))
        reply = fail(
          errorOf(new CloudError(400, `${name} request is not a JSON object`), RpcErrorCode.Malformed),
        );
      else if (req.v !== version)
        reply = fail(
          errorOf(
            new CloudError(
              400,
              `Site ${fabric.site} speaks version ${version} of the ${name} protocol, not version ${String(req.v)}.`,
            ),
            RpcErrorCode.Version,
          ),
        );
      else
        try {
          const result = await handler(req as RpcRequest<Req>);
          if (binary) return encodeFrame(version, result);
          reply = { v: version, ok: true, result };
        } catch (e) {
          reply =
            e instanceof CloudError
              ? fail(errorOf(e, RpcErrorCode.Cloud))
              : fail(
                  errorOf(
                    opts.internal?.(e) ??
                      new CloudError(500, `${name} request failed at ${fabric.site}: ${String(e)}`),
                    RpcErrorCode.Internal,
                  ),
                );
        }
      return encodeJson(reply);
    });
  }

  return { name, version, subject, call, serve };
}
