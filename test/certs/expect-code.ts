/** Test helper: runs `fn`, expects a troupe error with `code`, returns it for further checks. */
import { expect } from 'chai';
import { TroupeError, type ErrorCode } from '../../src/errors.js';

export function expectCode(fn: () => unknown, code: ErrorCode): TroupeError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected an error with code ${code}`).to.be.instanceOf(TroupeError);
  const err = caught as TroupeError;
  expect(err.code, err.message).to.equal(code);
  expect(err.message).to.not.include('\n');
  return err;
}
