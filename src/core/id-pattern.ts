/**
 * Ids are ours (22 base64url chars) or chosen by a caller at the sync-async boundary.
 * Caller ids are restricted to a URL- and header-safe alphabet so they can travel anywhere unescaped.
 * A module without imports, so the console's browser bundle validates ids with this very pattern.
 */
export const TOKEN_ID_PATTERN = '^[A-Za-z0-9_-]{8,128}$';
