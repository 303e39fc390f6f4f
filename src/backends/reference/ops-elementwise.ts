// Reference elementwise ops: RMSNorm (f64 sum of squares), SwiGLU, add, bias.

/** out[m, n] = x / sqrt(mean(x²) + eps) * weight, per row; out may alias x */
export function rmsNorm(out: Float32Array, x: Float32Array, weight: Float32Array, m: number, n: number, eps: number): void {
  for (let i = 0; i < m; i++) {
    const o = i * n;
    let ss = 0;
    for (let c = 0; c < n; c++) ss += x[o + c]! * x[o + c]!;
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let c = 0; c < n; c++) out[o + c] = x[o + c]! * inv * weight[c]!;
  }
}

/** out[m, n] = silu(gate) * up, gateUp [m, 2n] = per row [gate(n) | up(n)] */
export function siluMul(out: Float32Array, gateUp: Float32Array, m: number, n: number): void {
  for (let i = 0; i < m; i++) {
    const g0 = i * 2 * n, u0 = g0 + n, o = i * n;
    for (let c = 0; c < n; c++) {
      const g = gateUp[g0 + c]!;
      out[o + c] = (g / (1 + Math.exp(-g))) * gateUp[u0 + c]!;
    }
  }
}

/** out[i] = a[i] + b[i], i < n; out may alias a */
export function add(out: Float32Array, a: Float32Array, b: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
}

/** out[m, n] += bias[n] */
export function addBias(out: Float32Array, bias: Float32Array, m: number, n: number): void {
  for (let i = 0; i < m; i++) {
    const o = i * n;
    for (let c = 0; c < n; c++) out[o + c] = out[o + c]! + bias[c]!;
  }
}
