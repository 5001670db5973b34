/**
 * DSP0004 Annex C "programmatic units" as OVF producers write them for AllocationUnits and
 * capacityAllocationUnits: `byte * 2^20`, `byte*2^30`, `byte * 2 ^ 30`, `byte * 10^3`, `MegaBytes`,
 * `KiloBytes`, `GigaBytes`, `bytes`, `hertz * 10^6`, `MegaHertz` …
 */

const NAMED: Record<string, { base: 'byte' | 'hertz'; factor: number }> = {
  byte: { base: 'byte', factor: 1 },
  bytes: { base: 'byte', factor: 1 },
  kilobyte: { base: 'byte', factor: 1024 },
  kilobytes: { base: 'byte', factor: 1024 },
  kb: { base: 'byte', factor: 1024 },
  megabyte: { base: 'byte', factor: 1024 ** 2 },
  megabytes: { base: 'byte', factor: 1024 ** 2 },
  mb: { base: 'byte', factor: 1024 ** 2 },
  gigabyte: { base: 'byte', factor: 1024 ** 3 },
  gigabytes: { base: 'byte', factor: 1024 ** 3 },
  gb: { base: 'byte', factor: 1024 ** 3 },
  terabyte: { base: 'byte', factor: 1024 ** 4 },
  terabytes: { base: 'byte', factor: 1024 ** 4 },
  hertz: { base: 'hertz', factor: 1 },
  kilohertz: { base: 'hertz', factor: 1e3 },
  megahertz: { base: 'hertz', factor: 1e6 },
  gigahertz: { base: 'hertz', factor: 1e9 },
};

/** A parsed unit: its base quantity and the multiplier to that base. */
export interface ParsedUnit {
  readonly base: 'byte' | 'hertz';
  readonly factor: number;
}

/**
 * Parses an allocation-unit string; `undefined` when it is not one we understand.
 * Grammar (DSP0004 C.1, as seen in the wild): `NAME [* BASE ^ EXP] [* N]`, spaces optional.
 */
export function parseAllocationUnits(raw: string): ParsedUnit | undefined {
  const s = raw.toLowerCase().replace(/\s+/g, '');
  const [head, ...mods] = s.split('*');
  const named = NAMED[head ?? ''];
  if (!named) return undefined;
  let factor = named.factor;
  for (const m of mods) {
    const pow = /^(\d+)\^(-?\d+)$/.exec(m);
    if (pow) factor *= Number(pow[1]) ** Number(pow[2]);
    else if (/^\d+$/.test(m)) factor *= Number(m);
    else return undefined;
  }
  return { base: named.base, factor };
}

/** Writes a byte multiplier the way DSP0243 examples do (`byte * 2^20`), or `byte`. */
export function formatByteUnits(factor: number): string {
  if (factor === 1) return 'byte';
  const exp = Math.log2(factor);
  if (Number.isInteger(exp)) return `byte * 2^${exp}`;
  return `byte * ${factor}`;
}
