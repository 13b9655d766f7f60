/**
 * @module Interoperable image import settings and the web-download fetch (Glance's `/v2/info/import`
 * methods). `glance-direct` (stage, then import) and `copy-image` (a no-op: a site has one store) are
 * always offered. `web-download` is offered only when the site config lists the URLs it may fetch:
 * services.image.webDownloadAllowed, a list of URL prefixes ("https://images.example.org/cirros/");
 * a URI is fetched only when its normalized form starts with one of them (scheme http or https, no
 * user or password in it, redirects refused), so an image import cannot be made to reach a host or
 * port the operator did not name (Glance filters by scheme, host and port lists instead).
 * https://docs.openstack.org/api-ref/image/v2/#interoperable-image-import
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Clock } from '../../core/ports.ts';

/** How long web-download waits for the answer's headers (the body is bounded by the size cap). */
export const WEB_DOWNLOAD_CONNECT_MS = 30_000;

export interface WebDownload {
  /** The normalized URL prefixes a web-download may fetch from. */
  allowed: readonly string[];
  /** The body of a GET of `url` (an error when it cannot be fetched or is not a 2xx). */
  open(url: string): Promise<Readable>;
}

/** Reads services.image.webDownloadAllowed; anything but a list of http(s) URLs is a configuration error. */
export function webDownloadAllowed(settings: Record<string, unknown> | undefined): string[] {
  const v = settings?.webDownloadAllowed;
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Error('services.image.webDownloadAllowed must be a list of URL prefixes');
  return v.map((p) => {
    const u = typeof p === 'string' && URL.canParse(p) ? new URL(p) : undefined;
    if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password)
      throw new Error(`services.image.webDownloadAllowed: ${JSON.stringify(p)} is not an http(s) URL`);
    return u.href;
  });
}

/** The normalized URI when a web-download may fetch it (one of the prefixes starts it), else undefined. */
export function allowedUri(allowed: readonly string[], uri: string): string | undefined {
  if (!URL.canParse(uri)) return undefined;
  const u = new URL(uri);
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username || u.password) return undefined;
  return allowed.some((p) => u.href.startsWith(p)) ? u.href : undefined;
}

/** The fetch web-download uses: no redirects, headers within WEB_DOWNLOAD_CONNECT_MS. */
export function httpWebDownload(allowed: readonly string[], clock: Clock): WebDownload {
  return {
    allowed,
    async open(url) {
      const ctl = new AbortController();
      const timer = clock.setTimeout(() => ctl.abort(), WEB_DOWNLOAD_CONNECT_MS);
      try {
        const res = await fetch(url, { redirect: 'error', signal: ctl.signal });
        if (!res.ok || !res.body) throw new Error(`GET ${url}: ${res.status}`);
        return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
      } finally {
        timer.cancel();
      }
    },
  };
}
