/**
 * @module Where a new volume may go, as cinder-scheduler decides it for one site's one backend: the
 * backend's capabilities (what `scheduler-stats/get_pools` reports) and Cinder's CapabilitiesFilter,
 * which matches a volume type's extra specs against them. A volume whose type no backend satisfies
 * ends in `error` with a user message (NoValidBackend), as in Cinder.
 * https://docs.openstack.org/cinder/latest/contributor/scheduler-filters.html
 */

/** What a site's one volume backend reports (Cinder's volume stats), `novaTime` as the timestamp. */
export function backendCapabilities(driver: string, timestamp: string) {
  return {
    volume_backend_name: driver,
    vendor_name: 'Open Source',
    driver_version: '1.0.0',
    storage_protocol: 'iSCSI',
    QoS_support: false,
    multiattach: true,
    total_capacity_gb: 'infinite',
    free_capacity_gb: 'infinite',
    reserved_percentage: 0,
    timestamp,
    pool_name: driver,
  };
}

/**
 * Cinder's CapabilitiesFilter: every extra spec that is unscoped, or scoped `capabilities:`, names a
 * capability the backend must report and match; other scopes (`RESKEY:`, vendor keys) are left to
 * others. Values use Cinder's operators (`<is> True`, `<in>`, `<or>`, `s==`, `==`, `>=`, ...); a plain
 * value must equal the capability. Returns the first spec that fails, or undefined when all match.
 */
export function unmatchedSpec(
  specs: Record<string, string>,
  capabilities: Record<string, unknown>,
): string | undefined {
  for (const [key, req] of Object.entries(specs)) {
    const scope = key.split(':');
    if (scope.length > 1 && scope[0] !== 'capabilities') continue;
    const name = scope[0] === 'capabilities' ? scope.slice(1).join(':') : key;
    if (!Object.hasOwn(capabilities, name)) return key;
    if (!matches(capabilities[name], String(req))) return key;
  }
  return undefined;
}

/** One capability value against one extra spec value (Cinder's extra_specs_ops.match). */
export function matches(value: unknown, req: string): boolean {
  const words = req.trim().split(/\s+/);
  const op = words[0] ?? '';
  const rest = words.slice(1);
  const v = String(value);
  const num = (x: string) => Number(x);
  switch (op) {
    case '<is>':
      return v.toLowerCase() === String(rest[0] ?? '').toLowerCase();
    case '<in>':
      return v.includes(rest.join(' '));
    case '<all-in>':
      return rest.every((w) => v.includes(w));
    case '<or>': {
      const choices = req
        .trim()
        .split(/\s*<or>\s*/)
        .filter(Boolean);
      return choices.includes(v);
    }
    case 's==':
      return v === rest.join(' ');
    case 's!=':
      return v !== rest.join(' ');
    case 's<':
      return v < rest.join(' ');
    case 's<=':
      return v <= rest.join(' ');
    case 's>':
      return v > rest.join(' ');
    case 's>=':
      return v >= rest.join(' ');
    case '=':
      return num(v) >= num(rest[0] ?? 'NaN') || v === 'infinite';
    case '==':
      return num(v) === num(rest[0] ?? 'NaN');
    case '!=':
      return num(v) !== num(rest[0] ?? 'NaN');
    case '>=':
      return num(v) >= num(rest[0] ?? 'NaN') || v === 'infinite';
    case '<=':
      return num(v) <= num(rest[0] ?? 'NaN');
    default:
      return v === req;
  }
}
