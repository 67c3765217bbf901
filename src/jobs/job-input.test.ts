import { describe, expect, it } from 'vitest';
import { JobInputError, validateJobOptions } from './job-input.js';

describe('validateJobOptions quality', () => {
  it('accepts "exact" and "any"', () => {
    expect(validateJobOptions({ quality: 'exact' })).toEqual({ quality: 'exact' });
    expect(validateJobOptions({ quality: 'any' })).toEqual({ quality: 'any' });
  });

  it('rejects anything else, naming the field and the allowed values', () => {
    expect(() => validateJobOptions({ quality: 'high' })).toThrow(JobInputError);
    expect(() => validateJobOptions({ quality: 'high' })).toThrow('options.quality: must be one of "exact", "any", got "high"');
    expect(() => validateJobOptions({ quality: true })).toThrow(/options\.quality/);
  });
});
