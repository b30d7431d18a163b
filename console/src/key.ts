/**
 * The API key lives in memory and in this tab's sessionStorage, so a reload keeps the session and closing the tab
 * ends it. Never localStorage, a cookie or a URL: none of those would stay within the tab.
 */
const STORAGE_NAME = 'tollgate-console-key';

export function storedKey(): string | undefined {
  try {
    return sessionStorage.getItem(STORAGE_NAME) ?? undefined;
  } catch {
    return undefined;
  }
}

export function keepKey(key: string): void {
  try {
    sessionStorage.setItem(STORAGE_NAME, key);
  } catch {
    // Storage refused (private mode, quota): the key stays in memory for this page only.
  }
}

export function forgetKey(): void {
  try {
    sessionStorage.removeItem(STORAGE_NAME);
  } catch {
    // Nothing was stored.
  }
}
