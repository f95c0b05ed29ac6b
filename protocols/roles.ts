/** The role a node plays, carried in its certificate and its hello; roles decide what a peer may do. */
export const ROLES = ['manager', 'worker', 'client'] as const;
export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}
