// Shared app state: the logged-in user and navigation helpers.
import type { User } from "./api";

export const session: { user: User | null } = { user: null };

export function can(action: string): boolean {
  return !!session.user?.permissions.includes(action);
}

export function go(hash: string): void {
  if (location.hash === hash) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else location.hash = hash;
}

export type Cleanup = () => void;
export interface PageContext {
  root: HTMLElement;
  params: Record<string, string>;
  query: URLSearchParams;
}
export type Page = (ctx: PageContext) => Promise<Cleanup | void> | Cleanup | void;
