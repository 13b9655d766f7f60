/**
 * @module Image size cap and per-project image quotas, as Glance has them: `image_size_cap` (one
 * image's data, default 1 TiB) and the unified limits `image_count_total` (images a project owns) and
 * `image_size_total` (bytes of image data a project stores). Over any of them is a 413.
 * Set in the site config under services.image: { imageSizeCap, imageCountTotal, imageSizeTotal }
 * (bytes, images, bytes); a quota left unset is unlimited.
 * https://docs.openstack.org/glance/latest/admin/quotas.html
 */
export interface ImageLimits {
  imageSizeCap: number;
  imageCountTotal: number;
  imageSizeTotal: number;
}

const DEFAULTS: ImageLimits = {
  imageSizeCap: 2 ** 40,
  imageCountTotal: Number.POSITIVE_INFINITY,
  imageSizeTotal: Number.POSITIVE_INFINITY,
};

/** Reads services.image; a value that is not a non-negative integer is a configuration error. */
export function imageLimits(settings: Record<string, unknown> | undefined): ImageLimits {
  const out = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS) as (keyof ImageLimits)[]) {
    const v = settings?.[k];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
      throw new Error(`services.image.${k} must be a non-negative integer, not ${JSON.stringify(v)}`);
    out[k] = v;
  }
  return out;
}
