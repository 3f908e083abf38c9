import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { Api, Me } from './api';
import type { Lang } from './format';
import type { Messages } from './i18n';

export interface ConsoleContext {
  readonly api: Api;
  readonly me: Me;
  readonly lang: Lang;
  readonly t: Messages;
  /** Whether the key may call this operation (GET /me `operations`): what it may not, the page does not offer. */
  may(operationId: string): boolean;
}

export const Ctx = createContext<ConsoleContext | null>(null);

export function useConsole(): ConsoleContext {
  const value = useContext(Ctx);
  if (!value) throw new Error('useConsole outside the signed-in console');
  return value;
}
