/**
 * Defaults and option checks of the PKI. Every check runs before any key is generated or any file is
 * touched, and fails with a SettingError naming the option, the value given and what was expected.
 */
import { settingError } from '../src/errors.js';

/** The subject O of every certificate troupe makes. */
export const ORGANIZATION = 'troupe';
export const DEFAULT_CA_COMMON_NAME = 'troupe CA';
/** 10 years: the CA outlives several rounds of node certificates, so adding a node never needs a new CA. */
export const DEFAULT_CA_DAYS = 3650;
/** Node certificates: 1 year. */
export const DEFAULT_DAYS = 365;
/** 100 years: anything longer is a typo. */
export const MAX_DAYS = 36500;
export const DEFAULT_WORKERS = 2;
export const DEFAULT_CLIENTS = 1;
/** Most worker (or client) certificates one `generate` call makes. */
export const MAX_NODES = 1000;
export const DEFAULT_MANAGER_NAME = 'manager';
export const RSA_KEY_BITS = 2048;
/** A new certificate's notBefore is set this far back (5 minutes) so a peer whose clock is a little slow accepts it. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** X.520 upper bound of a common name (characters). */
export const MAX_COMMON_NAME_LENGTH = 64;

export const NODE_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/i;
export const DAY_MS = 24 * 60 * 60 * 1000;

export function isNodeName(value: unknown): value is string {
  return typeof value === 'string' && NODE_NAME_PATTERN.test(value);
}

export function checkNodeName(option: string, value: unknown): string {
  if (!isNodeName(value)) {
    throw settingError(option, value, 'a node name: 1 to 63 letters, digits, ".", "_" or "-", starting with a letter or digit');
  }
  return value;
}

export function checkDays(option: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_DAYS) {
    throw settingError(option, value, `a whole number of days from 1 to ${MAX_DAYS}`);
  }
  return value as number;
}

export function checkCount(option: string, value: unknown): number {
  if (!Number.isInteger(value) || (value as number) < 0 || (value as number) > MAX_NODES) {
    throw settingError(option, value, `a whole number from 0 to ${MAX_NODES}`);
  }
  return value as number;
}

export function checkCommonName(option: string, value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_COMMON_NAME_LENGTH) {
    throw settingError(option, value, `a non-empty name of at most ${MAX_COMMON_NAME_LENGTH} characters`);
  }
  return value;
}

export function checkDate(option: string, value: unknown): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) {
    throw settingError(option, value, 'a valid Date');
  }
  return value;
}
