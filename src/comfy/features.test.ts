import { describe, expect, it } from 'vitest';
import { compareVersions, parseVersion, serverCapabilities, versionAtLeast } from './features.js';

describe('server feature gating', () => {
  it('parses release strings, with or without v, pre-release and build suffixes', () => {
    expect(parseVersion('0.3.64')).toEqual([0, 3, 64]);
    expect(parseVersion('v0.18.0')).toEqual([0, 18, 0]);
    expect(parseVersion('0.9')).toEqual([0, 9, 0]);
    expect(parseVersion('0.3.45-rc1+abc')).toEqual([0, 3, 45]);
    expect(parseVersion('nightly')).toBeUndefined();
    expect(parseVersion(undefined)).toBeUndefined();
  });

  it('compares numerically, not as text (0.18.0 > 0.9.2 > 0.3.64)', () => {
    expect(compareVersions([0, 18, 0], [0, 9, 2])).toBeGreaterThan(0);
    expect(compareVersions([0, 9, 2], [0, 3, 64])).toBeGreaterThan(0);
    expect(compareVersions([0, 3, 9], [0, 3, 45])).toBeLessThan(0);
    expect(versionAtLeast('0.3.45', [0, 3, 45])).toBe(true);
    expect(versionAtLeast('0.3.44', [0, 3, 45])).toBe(false);
  });

  it('answers the gates for old, boundary and post-0.3 servers', () => {
    const caps = (v: string | undefined) => {
      const c = serverCapabilities(v);
      return [c.supportsClientPromptId, c.supportsPartialTargets, c.supportsScopedInterrupt, c.supportsHistoryOffset];
    };
    expect(caps('0.3.44')).toEqual([false, false, false, false]);
    expect(caps('0.3.45')).toEqual([true, false, false, false]);
    expect(caps('0.3.48')).toEqual([true, true, false, false]);
    expect(caps('0.3.57')).toEqual([true, true, true, false]);
    expect(caps('0.3.64')).toEqual([true, true, true, true]);
    expect(caps('0.9.2')).toEqual([true, true, true, true]);
    expect(caps('0.18.0')).toEqual([true, true, true, true]);
    expect(caps('1.0.0')).toEqual([true, true, true, true]);
    expect(caps(undefined)).toEqual([false, false, false, false]);
  });

  it('reads the version from system stats', () => {
    const stats = { system: { os: 'posix', comfyui_version: '0.3.50' }, devices: [] };
    expect(serverCapabilities(stats)).toMatchObject({ version: '0.3.50', supportsPartialTargets: true, supportsScopedInterrupt: false });
  });
});
