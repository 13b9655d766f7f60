/**
 * @module JSON over HTTP against one site of a test cloud: a token (or none), a body (or none), and
 * the status with the parsed answer. For tests that act as several callers at once.
 */
export interface Http {
  (method: string, path: string, token?: string, body?: unknown): Promise<{ status: number; body: any }>;
}

export function httpAt(baseUrl: string): Http {
  return async (method, path, token, body) => {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: {
        ...(token ? { 'x-auth-token': token } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? (JSON.parse(text) as any) : undefined };
  };
}
