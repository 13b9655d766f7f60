/**
 * @module The fabric over NATS (nats.js v2): one connection per site, normally to that site's own
 * nats-server, which is routed (or leaf-linked) to the others. NATS errors become FabricErrors; a
 * responder's exception travels back as a reply carrying the `Nats-Service-Error` headers of the NATS
 * services protocol (https://github.com/nats-io/nats-architecture-and-design/blob/main/adr/ADR-32.md), so
 * the caller fails at once instead of waiting for its timeout.
 *
 * The client reconnects forever with jittered exponential backoff, but nothing here relies on NATS to
 * redeliver: messages sent while disconnected may be lost, and the change log's pull path repairs that.
 *
 * Least privilege (permissions.ts) is enforced by the nats-server (nats/server-config.ts writes it as
 * each site's user permissions). This client takes its replies under `_INBOX_<site>` so that its user
 * may subscribe there and nowhere else's. The server reports a violation asynchronously: a request fails
 * with FabricError Permission, a refused publish or subscription is logged and counted (stats.denied).
 * With `checkPermissions` the client also applies the rules itself, so that a forbidden subscribe or
 * serve throws at once, as on the memory fabric.
 */
import { connect, DebugEvents, ErrorCode, Events, headers, NatsError, nkeyAuthenticator } from 'nats';
import type { Msg, NatsConnection, Subscription, TlsOptions } from 'nats';
import type { Logger } from '../../core/ports.ts';
import { silentLogger } from '../../core/ports.ts';
import type { Fabric, FabricMessage, Unsubscribe } from '../fabric.ts';
import {
  DEFAULT_MAX_PAYLOAD,
  FabricError,
  FabricErrorCode,
  RemoteHandlerError,
  handlerErrorText,
} from '../fabric.ts';
import type { SubjectPermissions } from '../permissions.ts';
import { inboxPrefix, mayPublish, maySubscribe, sitePermissions } from '../permissions.ts';

export interface NatsFabricOptions {
  servers: string | string[];
  user?: string;
  pass?: string;
  token?: string;
  /** The site's nkey seed (`SU…`), for a server user given by its public nkey instead of a password. */
  nkeySeed?: string;
  /** Connection name shown by the server's /connz; defaults to `atoll-site-<site>`. */
  name?: string;
  /** TLS to the server: `{ caFile }` to verify it, plus `certFile`/`keyFile` when the server requires
   * client certificates (`verify: true`). An empty object asks for TLS with the system's CAs. */
  tls?: TlsOptions;
  /** Apply this site's permissions (permissions.ts) in the client too, so that a forbidden subscribe or
   * serve throws FabricError Permission at once instead of being refused later by the server. */
  checkPermissions?: boolean;
  /** First reconnect wait, ms; doubles per failed attempt up to maxReconnectWaitMs, with jitter. */
  reconnectTimeWaitMs?: number;
  maxReconnectWaitMs?: number;
  /** Keep trying when no server is reachable at start, instead of failing connect(). */
  waitOnFirstConnect?: boolean;
  /** Client pings; a server silent for pingIntervalMs * maxPingOut is dropped and another one tried. */
  pingIntervalMs?: number;
  maxPingOut?: number;
  /** How long close() waits for responders still working, and then for the drain, ms each. A site
   * shutting down while its server is unreachable must not hang: after that the connection is closed. */
  closeGraceMs?: number;
  log?: Logger;
}

/** Headers of the NATS services protocol (ADR-32) that mark a reply as an error. */
export const SERVICE_ERROR = 'Nats-Service-Error';
export const SERVICE_ERROR_CODE = 'Nats-Service-Error-Code';

/** Queue group of every responder, so that one request gets one answer, as on the memory fabric. */
const RESPONDERS_QUEUE = 'atoll';

export { RemoteHandlerError };

/** Maps a nats.js error to a FabricError; anything else is returned unchanged. */
export function toFabricError(err: unknown, subject: string, timeoutMs: number): unknown {
  if (!(err instanceof NatsError)) return err;
  const cause =
    err.code === ErrorCode.RequestError && err.chainedError instanceof NatsError ? err.chainedError : err;
  switch (cause.code) {
    case ErrorCode.NoResponders:
      return new FabricError(FabricErrorCode.NoResponders, `no responders on ${subject}`);
    case ErrorCode.Timeout:
      return new FabricError(
        FabricErrorCode.Timeout,
        `request on ${subject} timed out after ${timeoutMs} ms`,
      );
    case ErrorCode.ConnectionClosed:
    case ErrorCode.ConnectionDraining:
      return new FabricError(FabricErrorCode.Closed, `fabric closed (${subject})`);
    case ErrorCode.PermissionsViolation:
      return new FabricError(FabricErrorCode.Permission, `${cause.message} (${subject})`);
    default:
      return err;
  }
}

const EMPTY = new Uint8Array(0);

export class NatsFabric implements Fabric {
  readonly site: string;
  readonly nc: NatsConnection;
  private readonly log: Logger;
  private readonly closeGraceMs: number;
  private readonly subs = new Set<Subscription>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly pending = new Set<(e: unknown) => void>();
  private closing: Promise<void> | undefined;
  private readonly permissions: SubjectPermissions | undefined;
  /** Operations refused for permissions, by the server or (checkPermissions) by this client. */
  readonly stats = { denied: 0 };

  private constructor(
    site: string,
    nc: NatsConnection,
    log: Logger,
    closeGraceMs: number,
    permissions: SubjectPermissions | undefined,
  ) {
    this.site = site;
    this.nc = nc;
    this.log = log;
    this.closeGraceMs = closeGraceMs;
    this.permissions = permissions;
  }

  static async connect(site: string, opts: NatsFabricOptions): Promise<NatsFabric> {
    const log = (opts.log ?? silentLogger).child({ fabric: 'nats', site });
    const base = opts.reconnectTimeWaitMs ?? 500;
    const cap = opts.maxReconnectWaitMs ?? 15_000;
    // Failed dials since the last good connection; nats.js asks for a wait before each dial.
    let failures = 0;
    const nc = await connect({
      servers: opts.servers,
      name: opts.name ?? `atoll-site-${site}`,
      ...(opts.user !== undefined ? { user: opts.user } : {}),
      ...(opts.pass !== undefined ? { pass: opts.pass } : {}),
      ...(opts.token !== undefined ? { token: opts.token } : {}),
      ...(opts.nkeySeed !== undefined
        ? { authenticator: nkeyAuthenticator(new TextEncoder().encode(opts.nkeySeed)) }
        : {}),
      ...(opts.tls ? { tls: opts.tls } : {}),
      inboxPrefix: inboxPrefix(site),
      maxReconnectAttempts: -1,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? false,
      pingInterval: opts.pingIntervalMs ?? 10_000,
      maxPingOut: opts.maxPingOut ?? 3,
      // "Equal jitter": half the backoff is fixed, half random, so many sites that lost their server at
      // the same moment do not come back in step (FIELD-LESSONS: reconnects back off with jitter).
      reconnectDelayHandler: () => {
        const wait = Math.min(cap, base * 2 ** Math.min(failures, 16));
        return Math.round(wait / 2 + Math.random() * (wait / 2));
      },
    });
    const permissions = opts.checkPermissions ? sitePermissions(site) : undefined;
    const fabric = new NatsFabric(site, nc, log, opts.closeGraceMs ?? 5000, permissions);
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === DebugEvents.Reconnecting) failures++;
        else if (s.type === Events.Reconnect) {
          failures = 0;
          log.warn({ server: s.data }, 'fabric reconnected');
        } else if (s.type === Events.Disconnect) log.warn({ server: s.data }, 'fabric disconnected');
        else if (s.type === Events.Error && s.data === ErrorCode.PermissionsViolation) {
          fabric.stats.denied++;
          log.error({ ...s.permissionContext }, 'fabric permission denied by the server');
        } else if (s.type === Events.Error) log.error({ err: String(s.data) }, 'fabric error');
      }
    })().catch(() => {});
    return fabric;
  }

  /** The connected server's advertised max_payload (it may change after a reconnect elsewhere). */
  get maxPayload(): number {
    return this.nc.info?.max_payload ?? DEFAULT_MAX_PAYLOAD;
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /** Resolves when the server has processed everything sent so far (subscriptions included). */
  async flush(): Promise<void> {
    if (!this.closed) await this.nc.flush();
  }

  publish(subject: string, data: Uint8Array): void {
    if (this.closed) return;
    if (this.permissions && !mayPublish(this.permissions, subject)) {
      this.stats.denied++;
      return; // as the server would: dropped (and counted), not thrown
    }
    try {
      this.nc.publish(subject, data);
    } catch (e) {
      // Fire and forget: a closing connection loses the message like a WAN would. Anything else
      // (a bad subject, a payload over the server's max_payload) is the caller's bug and is thrown.
      if (
        e instanceof NatsError &&
        (e.code === ErrorCode.ConnectionClosed || e.code === ErrorCode.ConnectionDraining)
      )
        return;
      throw e;
    }
  }

  subscribe(subject: string, handler: (msg: FabricMessage) => void): Unsubscribe {
    if (this.closed) return () => {};
    this.checkSubscribe(subject);
    return this.track(
      this.nc.subscribe(subject, {
        callback: (err, msg) => {
          if (err) return this.refused(err, subject);
          if (this.closed) return;
          try {
            handler({ subject: msg.subject, data: msg.data });
          } catch (e) {
            // nats.js calls us from its parser: a throw here would break the connection.
            this.log.error({ subject: msg.subject, err: String(e) }, 'subscriber failed');
          }
        },
      }),
    );
  }

  serve(subject: string, handler: (data: Uint8Array) => Promise<Uint8Array> | Uint8Array): Unsubscribe {
    if (this.closed) return () => {};
    this.checkSubscribe(subject);
    return this.track(
      this.nc.subscribe(subject, {
        queue: RESPONDERS_QUEUE,
        callback: (err, msg) => {
          if (err) return this.refused(err, subject);
          if (this.closed) return;
          const work = Promise.resolve()
            .then(() => handler(msg.data))
            .then(
              (reply) => this.reply(msg, reply),
              (e: unknown) => {
                this.log.warn({ subject: msg.subject, err: String(e) }, 'responder failed');
                const h = headers();
                h.set(SERVICE_ERROR_CODE, '500');
                h.set(SERVICE_ERROR, handlerErrorText(e));
                this.reply(msg, EMPTY, h);
              },
            );
          this.inFlight.add(work);
          void work.finally(() => this.inFlight.delete(work));
        },
      }),
    );
  }

  async request(subject: string, data: Uint8Array, timeoutMs: number): Promise<Uint8Array> {
    if (this.closed) throw new FabricError(FabricErrorCode.Closed, 'fabric closed');
    if (this.permissions && !mayPublish(this.permissions, subject)) {
      this.stats.denied++;
      throw new FabricError(FabricErrorCode.Permission, `site ${this.site} may not publish on ${subject}`);
    }
    let msg: Msg;
    let fail: ((e: unknown) => void) | undefined;
    try {
      // close() fails requests still waiting at once (nats.js would only fail them at drain, as timeouts).
      const closed = new Promise<never>((_, reject) => (fail = reject));
      this.pending.add(fail!);
      msg = await Promise.race([this.nc.request(subject, data, { timeout: timeoutMs }), closed]);
    } catch (e) {
      if (this.closed) throw new FabricError(FabricErrorCode.Closed, `fabric closed (${subject})`);
      throw toFabricError(e, subject, timeoutMs);
    } finally {
      this.pending.delete(fail!);
    }
    const failure = msg.headers?.get(SERVICE_ERROR);
    if (msg.headers && failure) {
      const status = Number(msg.headers.get(SERVICE_ERROR_CODE)) || 500;
      throw new RemoteHandlerError(subject, status, failure);
    }
    return msg.data;
  }

  /** Stops delivery at once, fails this site's pending requests, lets responders already working send
   * their replies, then drains (flushes what was published) and closes. Bounded in time; idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const fail of [...this.pending]) fail(new FabricError(FabricErrorCode.Closed, 'fabric closed'));
      for (const s of this.subs) {
        try {
          s.unsubscribe();
        } catch {
          // The connection is already gone.
        }
      }
      this.subs.clear();
      await within(Promise.allSettled([...this.inFlight]), this.closeGraceMs);
      if (!this.nc.isClosed() && !this.nc.isDraining()) {
        const drained = await within(
          this.nc.drain().then(
            () => true,
            () => true, // closed underneath us (e.g. a fatal auth error): nothing left to drain
          ),
          this.closeGraceMs,
        );
        if (!drained) this.log.warn({}, 'fabric drain timed out; closing');
      }
      if (!this.nc.isClosed()) await this.nc.close().catch(() => {});
      await this.nc.closed();
    })();
    return this.closing;
  }

  private checkSubscribe(subject: string): void {
    if (this.permissions && !maySubscribe(this.permissions, subject)) {
      this.stats.denied++;
      throw new FabricError(
        FabricErrorCode.Permission,
        `site ${this.site} may not subscribe to ${JSON.stringify(subject)}`,
      );
    }
  }

  /** A subscription the server refused ends with an error in its callback; nothing else would say so. */
  private refused(err: unknown, subject: string): void {
    if (err instanceof NatsError && err.code === ErrorCode.PermissionsViolation)
      this.log.error({ subject }, 'subscription refused by the server (permissions)');
    else if (err && !this.closed) this.log.warn({ subject, err: String(err) }, 'subscription failed');
  }

  private track(sub: Subscription): Unsubscribe {
    this.subs.add(sub);
    return () => {
      if (!this.subs.delete(sub)) return;
      try {
        sub.unsubscribe();
      } catch {
        // Already closed with the connection.
      }
    };
  }

  private reply(msg: Msg, data: Uint8Array, h?: ReturnType<typeof headers>): void {
    if (!msg.reply) return; // published, not requested: nobody waits for an answer
    try {
      msg.respond(data, h ? { headers: h } : undefined);
    } catch (e) {
      this.log.warn({ subject: msg.subject, err: String(e) }, 'could not send reply');
    }
  }
}

/** `p`'s value, or undefined once `ms` have passed. */
async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
