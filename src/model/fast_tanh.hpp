#pragma once
// z <- tanh(z + bias) over the rows of a (rows, cols) row-major block, bias of length cols.
// libtorch's tanh (Sleef, 1 ulp) costs about 5 ns per double here, as much as the embedding net's
// matrix products around it; this one about 1 ns: exp by range reduction and a polynomial, then
// (1 - e) / (1 + e) with e = exp(-2|z|), a Taylor series below |z| = 1/32. Absolute error within
// 2.3e-16 (double) and 6e-8 (float), relative error 1e-15 (double) and 6e-7 (float); NaN stays NaN.
#include <cmath>
#include <cstdint>
#include <cstring>

namespace atomforge::model {

// The single values are inline, so that fused kernels' loops (vectorised for the CPU they run
// on) compute them in place.

// exp(x) for x in [-708, 0] (double) / [-87, 0] (float), written so that the compiler vectorises
// it: k = round(x / ln 2) through the 1.5 * 2^52 rounding constant, whose low bits then hold k.
inline double exp_nonpositive(double x) {
  x = x < -708.0 ? -708.0 : x;
  const double shifted = x * 1.4426950408889634 + 0x1.8p52;
  int64_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  const double k = shifted - 0x1.8p52;
  const double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;  // |r| <= ln2 / 2
  double p = 1.0 / 6227020800.0;  // Taylor to r^13: remainder below 2e-16
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  const int64_t scale_bits = (bits - 0x4338000000000000LL + 1023) << 52;  // 2^k
  double scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}

inline float exp_nonpositive(float x) {
  x = x < -87.0f ? -87.0f : x;
  const float shifted = x * 1.44269504f + 0x1.8p23f;
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  const float k = shifted - 0x1.8p23f;
  const float r = (x - k * 0.693145752f) - k * 1.42860677e-06f;
  float p = 1.0f / 5040.0f;  // Taylor to r^7
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t scale_bits = (bits - 0x4B400000 + 127) << 23;
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return p * scale;
}

template <typename T>
inline T tanh_value(T v) {
  const T e = exp_nonpositive(T(-2) * std::fabs(v));
  const T far = (T(1) - e) / (T(1) + e);
  // Near zero 1 - e cancels; tanh v = v - v^3/3 + 2v^5/15 - 17v^7/315 + 62v^9/2835 there.
  const T v2 = v * v;
  const T near = std::fabs(v) * (T(1) + v2 * (T(-1) / 3 + v2 * (T(2) / 15 + v2 * (T(-17) / 315 + v2 * (T(62) / 2835)))));
  return std::copysign(std::fabs(v) < T(1) / 32 ? near : far, v);
}

void bias_tanh_rows(double* z, const double* bias, int64_t rows, int64_t cols);
void bias_tanh_rows(float* z, const float* bias, int64_t rows, int64_t cols);

}  // namespace atomforge::model
