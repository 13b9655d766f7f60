/**
 * @module One error hierarchy for every API. Services throw CloudError subclasses; the site's error
 * handler renders them in the fault shape of the API the request was for (Keystone, Nova, Glance,
 * Neutron or Cinder style). Errors that cross the fabric travel as data (toData/fromData).
 */

/** Fault names by status, as Nova and Cinder spell them in their fault bodies. */
const NOVA_FAULT_NAMES: Record<number, string> = {
  400: 'badRequest',
  401: 'unauthorized',
  403: 'forbidden',
  404: 'itemNotFound',
  405: 'badMethod',
  409: 'conflictingRequest',
  413: 'overLimit',
  415: 'badMediaType',
  500: 'computeFault',
  501: 'notImplemented',
  503: 'serviceUnavailable',
};

/** Keystone titles by status (keystone/exception.py). */
const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  413: 'Request Entity Too Large',
  415: 'Unsupported Media Type',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  503: 'Service Unavailable',
};

/** Neutron exception type names by status. */
const NEUTRON_TYPES: Record<number, string> = {
  400: 'BadRequest',
  401: 'NotAuthorized',
  403: 'PolicyNotAuthorized',
  404: 'NotFound',
  409: 'Conflict',
  413: 'OverQuota',
  503: 'ServiceUnavailable',
};

export interface ErrorData {
  type: string;
  status: number;
  message: string;
  retryable: boolean;
  /** Neutron-style type override, e.g. IpAddressAlreadyAllocated. */
  detailType?: string;
}

export class CloudError extends Error {
  readonly status: number;
  readonly retryable: boolean;
  detailType: string | undefined;
  constructor(status: number, message: string, opts: { retryable?: boolean; detailType?: string } = {}) {
    super(message);
    this.status = status;
    this.retryable = opts.retryable ?? false;
    this.detailType = opts.detailType;
    this.name = new.target.name;
  }
  get title(): string {
    return TITLES[this.status] ?? 'Error';
  }
  toData(): ErrorData {
    const d: ErrorData = {
      type: this.name,
      status: this.status,
      message: this.message,
      retryable: this.retryable,
    };
    if (this.detailType) d.detailType = this.detailType;
    return d;
  }
  static fromData(d: ErrorData): CloudError {
    return new CloudError(d.status, d.message, {
      retryable: d.retryable,
      ...(d.detailType ? { detailType: d.detailType } : {}),
    });
  }
}

export class BadRequest extends CloudError {
  constructor(message: string, detailType?: string) {
    super(400, message, detailType ? { detailType } : {});
  }
}
export class Unauthorized extends CloudError {
  constructor(message = 'The request you have made requires authentication.') {
    super(401, message);
  }
}
export class Forbidden extends CloudError {
  constructor(message = 'You are not authorized to perform the requested action.') {
    super(403, message);
  }
}
export class NotFound extends CloudError {
  constructor(message: string, detailType?: string) {
    super(404, message, detailType ? { detailType } : {});
  }
}
export class Conflict extends CloudError {
  constructor(message: string, detailType?: string) {
    super(409, message, detailType ? { detailType } : {});
  }
}
export class TooLarge extends CloudError {
  constructor(message: string, detailType?: string) {
    super(413, message, detailType ? { detailType } : {});
  }
}
/** The owner of a resource (or a service it needs) cannot be reached: always names the site. */
export class SiteUnavailable extends CloudError {
  readonly site: string;
  constructor(site: string, why: string) {
    super(503, `Site ${site} is unreachable: ${why}`, { retryable: true });
    this.site = site;
  }
}

export type ApiFlavor = 'keystone' | 'nova' | 'glance' | 'neutron' | 'cinder' | 'plain';

/** Picks the fault style from the request path's service prefix. */
export function apiFlavorOf(url: string): ApiFlavor {
  if (url.startsWith('/identity')) return 'keystone';
  if (url.startsWith('/compute')) return 'nova';
  if (url.startsWith('/image')) return 'glance';
  if (url.startsWith('/network')) return 'neutron';
  if (url.startsWith('/volume')) return 'cinder';
  return 'plain';
}

/** The fault body an OpenStack client expects for this API. */
export function faultBody(flavor: ApiFlavor, status: number, message: string, detailType?: string): unknown {
  switch (flavor) {
    case 'keystone':
    case 'plain':
      return { error: { code: status, title: TITLES[status] ?? 'Error', message } };
    case 'nova':
    case 'cinder':
      return { [NOVA_FAULT_NAMES[status] ?? 'computeFault']: { code: status, message } };
    case 'neutron':
      return {
        NeutronError: { type: detailType ?? NEUTRON_TYPES[status] ?? 'NeutronError', message, detail: '' },
      };
    case 'glance':
      // Glance's clients read every top-level value of a JSON fault as an object holding `message`
      // (python-glanceclient's exc.from_response), so nothing else may sit at the top level.
      return { error: { code: status, title: TITLES[status] ?? 'Error', message } };
  }
}
