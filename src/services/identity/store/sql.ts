/**
 * @module Small helpers the identity repositories share: a list of `?` for an IN clause.
 */

/** `?,?,?` for an IN clause of n values (n > 0). */
export const placeholders = (n: number): string => Array.from({ length: n }, () => '?').join(',');
