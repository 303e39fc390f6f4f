// Seeded pseudo-random numbers for dataset generation and request arrivals.
//
// Algorithm: xoshiro128** (Blackman & Vigna, "Scrambled linear pseudorandom number generators",
// 2018; 128-bit state, period 2^128 - 1), its four state words seeded from the integer seed by
// SplitMix32 (the 32-bit variant of SplitMix64's seeding, as the xoshiro authors recommend).
// Derived draws:
//   float()       = next u32 / 2^32, uniform on [0, 1)
//   intBelow(n)   = floor(float() * n); bias <= n / 2^32 (irrelevant for vocab and length ranges)
//   normal(m, s)  = Box-Muller on two floats (both outputs used in turn)
//   exponential(r)= -ln(1 - u) / r
//   gamma(k, th)  = Marsaglia & Tsang (2000), with the k < 1 boost u^(1/k)
// The numbers are reproducible for a seed in this implementation; they are not NumPy's stream, so a
// dataset made here with seed 420 has the same distribution as TRT-LLM's, not the same token ids.

export class Prng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  private spareNormal: number | null = null;

  constructor(seed: number) {
    let x = (Math.floor(seed) >>> 0) ^ (Math.floor(seed / 4294967296) >>> 0);
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // all-zero state is a fixed point
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 = (this.s2 ^ this.s0) >>> 0;
    this.s3 = (this.s3 ^ this.s1) >>> 0;
    this.s1 = (this.s1 ^ this.s2) >>> 0;
    this.s0 = (this.s0 ^ this.s3) >>> 0;
    this.s2 = (this.s2 ^ t) >>> 0;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform on [0, 1). */
  float(): number {
    return this.nextU32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  intBelow(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi] (both inclusive). */
  intBetween(lo: number, hi: number): number {
    return lo + this.intBelow(hi - lo + 1);
  }

  /** Normal(mean, stdev) by Box-Muller. */
  normal(mean = 0, stdev = 1): number {
    if (this.spareNormal !== null) {
      const z = this.spareNormal;
      this.spareNormal = null;
      return mean + stdev * z;
    }
    const u1 = 1 - this.float(); // (0, 1]: log is finite
    const u2 = this.float();
    const r = Math.sqrt(-2 * Math.log(u1));
    this.spareNormal = r * Math.sin(2 * Math.PI * u2);
    return mean + stdev * r * Math.cos(2 * Math.PI * u2);
  }

  /** Exponential with the given rate (mean 1 / rate). */
  exponential(rate: number): number {
    return -Math.log(1 - this.float()) / rate;
  }

  /** Gamma(shape k, scale theta); mean k * theta. */
  gamma(shape: number, scale: number): number {
    if (shape < 1) {
      const u = 1 - this.float();
      return this.gamma(shape + 1, scale) * Math.pow(u, 1 / shape);
    }
    const d = shape - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      let x: number;
      let v: number;
      do {
        x = this.normal();
        v = 1 + c * x;
      } while (v <= 0);
      v = v * v * v;
      const u = 1 - this.float();
      if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v * scale;
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
