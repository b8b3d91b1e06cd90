/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/fft/fft.h>
#include <gnuradio/modrec/symbol_rate_estimator.h>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

namespace gr {
namespace modrec {

namespace {

std::invalid_argument bad(const std::string& what)
{
    return std::invalid_argument("modrec symbol_rate_estimator: " + what);
}

// atan2(y, x) in radians, |error| < 3e-7 (about float32's own rounding of atan2 at pi), std::atan2's
// signs (-0.0 included). Volk 2.5's volk_32fc_s32f_atan2_32f falls back to atan2f on this
// platform, which took 45 % of an estimate (perf); this one vectorises: selects, no branches
// (the file is built with -fno-trapping-math, lib/CMakeLists.txt, so GCC may if-convert them).
// atan(t) = t P(t^2) on [0, 1], P a least-squares fit of degree 6 in t^2 (weights iterated toward
// equal ripple), with the usual octant reductions.
inline float fast_atan2(float y, float x)
{
    const float ax = std::fabs(x), ay = std::fabs(y);
    const float hi = ax > ay ? ax : ay, lo = ax > ay ? ay : ax;
    const float t = lo / (hi > 0.0f ? hi : 1.0f); // atan2(0, 0) = 0
    const float t2 = t * t;
    float a = 0.0068117548f;
    a = a * t2 - 0.0336041115f;
    a = a * t2 + 0.0796235576f;
    a = a * t2 - 0.1323333681f;
    a = a * t2 + 0.1980781406f;
    a = a * t2 - 0.3331736922f;
    a = a * t2 + 0.9999961257f;
    a *= t;
    const float swapped = 1.5707963268f - a;
    a = ay > ax ? swapped : a;
    const float flipped = 3.1415926536f - a;
    a = std::signbit(x) ? flipped : a;
    return std::copysign(a, y);
}

// The sum of n floats in float64, over four interleaved partial sums: one running sum is a chain
// of dependent additions, four times slower over the 32k values of a window.
double sum(const float* v, size_t n)
{
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += v[i];
        s1 += v[i + 1];
        s2 += v[i + 2];
        s3 += v[i + 3];
    }
    for (; i < n; i++) {
        s0 += v[i];
    }
    return (s0 + s1) + (s2 + s3);
}

// The hot loops below are compiled twice, for AVX2 and for the x86-64 baseline (SSE2), and the
// loader picks one for the CPU it runs on (GCC's target_clones, an ifunc): the module stays
// portable and a newer CPU runs them with 8 floats per instruction instead of 4. Neither clone
// may fuse a multiply and an add (FMA is not enabled), so both round alike, bit for bit.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MODREC_HOT_LOOP __attribute__((target_clones("avx2", "default")))
#else
#define MODREC_HOT_LOOP
#endif

// Eight floats as one value (GCC's vector extension): two SSE2 registers or one AVX2 register,
// whichever clone is running.
typedef float f32x8 __attribute__((vector_size(32)));

// (by reference: a vector returned by value would change the default clone's calling convention)
inline void load8(f32x8& v, const float* p) { std::memcpy(&v, p, sizeof v); }

// mid[i] = sum_j taps[j] x[i + j] for i < n_mid, real and imaginary parts apart. Each output's
// products are added in tap order from 0, as a plain loop would, so every clone rounds alike;
// sixteen outputs at a time are held in registers, and the input is read once rather than once
// per tap (the pass-per-tap loop took a quarter of an estimate, perf).
MODREC_HOT_LOOP
void interpolate_mid(const float* taps,
                     size_t n_taps,
                     const float* x_re,
                     const float* x_im,
                     size_t n_mid,
                     float* mid_re,
                     float* mid_im)
{
    size_t i = 0;
    for (; i + 16 <= n_mid; i += 16) {
        f32x8 re0 = {}, re1 = {}, im0 = {}, im1 = {};
        for (size_t j = 0; j < n_taps; j++) {
            const float tap = taps[j];
            f32x8 a, b, c, d;
            load8(a, x_re + i + j);
            load8(b, x_re + i + j + 8);
            load8(c, x_im + i + j);
            load8(d, x_im + i + j + 8);
            re0 += a * tap;
            re1 += b * tap;
            im0 += c * tap;
            im1 += d * tap;
        }
        std::memcpy(mid_re + i, &re0, sizeof re0);
        std::memcpy(mid_re + i + 8, &re1, sizeof re1);
        std::memcpy(mid_im + i, &im0, sizeof im0);
        std::memcpy(mid_im + i + 8, &im1, sizeof im1);
    }
    for (; i < n_mid; i++) {
        float re = 0.0f, im = 0.0f;
        for (size_t j = 0; j < n_taps; j++) {
            re += taps[j] * x_re[i + j];
            im += taps[j] * x_im[i + j];
        }
        mid_re[i] = re;
        mid_im[i] = im;
    }
}

// Split complex samples into real and imaginary parts, zeroing any sample with a NaN or Inf
// part; returns the largest |part| of the finite samples and counts the others. Worked in the
// floats' bits: a non-negative float orders as its bit pattern does, so the peak is an integer
// maximum and finiteness an integer compare, eight samples at a time (written as a plain loop in
// floats, GCC 12 kept it scalar: a tenth of an estimate, perf).
MODREC_HOT_LOOP
float split_finite(const gr_complex* samples, size_t n, float* x_re, float* x_im, size_t& non_finite)
{
    typedef uint32_t u32x8 __attribute__((vector_size(32)));
    constexpr uint32_t magnitude = 0x7fffffffu, infinity = 0x7f800000u; // NaN, +-Inf: the largest
    const auto* iq = reinterpret_cast<const char*>(samples);
    u32x8 peak8 = {}, bad8 = {};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        u32x8 lo, hi; // samples i..i+3 and i+4..i+7, interleaved re, im
        std::memcpy(&lo, iq + 8 * i, sizeof lo);
        std::memcpy(&hi, iq + 8 * i + sizeof lo, sizeof hi);
        const u32x8 re = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
        const u32x8 im = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
        const u32x8 a = re & magnitude, b = im & magnitude;
        const u32x8 finite = (u32x8)((a < infinity) & (b < infinity)); // all ones where finite
        const u32x8 r = re & finite, m = im & finite;
        std::memcpy(x_re + i, &r, sizeof r);
        std::memcpy(x_im + i, &m, sizeof m);
        const u32x8 larger = (a > b ? a : b) & finite;
        peak8 = larger > peak8 ? larger : peak8;
        bad8 += ~finite & 1u;
    }
    uint32_t peak = 0;
    size_t bad = 0;
    for (int k = 0; k < 8; k++) {
        peak = peak8[k] > peak ? peak8[k] : peak;
        bad += bad8[k];
    }
    for (; i < n; i++) {
        uint32_t re, im;
        std::memcpy(&re, iq + 8 * i, sizeof re);
        std::memcpy(&im, iq + 8 * i + sizeof re, sizeof im);
        const uint32_t a = re & magnitude, b = im & magnitude;
        const bool finite = a < infinity && b < infinity;
        const uint32_t r = finite ? re : 0u, m = finite ? im : 0u;
        std::memcpy(x_re + i, &r, sizeof r);
        std::memcpy(x_im + i, &m, sizeof m);
        const uint32_t larger = finite ? (a > b ? a : b) : 0u;
        peak = larger > peak ? larger : peak;
        bad += finite ? 0 : 1;
    }
    non_finite = bad;
    float peak_value;
    std::memcpy(&peak_value, &peak, sizeof peak_value);
    return peak_value;
}

// The two features of y, the stream interpolated by 2 (y[2i] = x[i + half], y[2i + 1] = mid[i]),
// read from x and mid without building y: the squared envelope |y[i]|^2 (m values) and the phase
// steps arg(y[i + 1] conj(y[i])) (m - 1 values), each with the arithmetic of a loop over y (same
// bits), without y's interleaved copy: a window's buffers then fit the caches better (an estimate
// right after a batch of ONNX Runtime took 0.2 ms longer than one run warm, measured).
MODREC_HOT_LOOP
void envelope_and_steps(const float* x_re,
                        const float* x_im,
                        const float* mid_re,
                        const float* mid_im,
                        size_t n_mid,
                        float* envelope,
                        float* steps)
{
    for (size_t i = 0; i < n_mid; i++) {
        const float a_re = x_re[i], a_im = x_im[i];     // y[2i]
        const float b_re = mid_re[i], b_im = mid_im[i]; // y[2i + 1]
        envelope[2 * i] = a_re * a_re + a_im * a_im;
        envelope[2 * i + 1] = b_re * b_re + b_im * b_im;
        steps[2 * i] = fast_atan2(b_im * a_re - b_re * a_im, b_re * a_re + b_im * a_im);
    }
    for (size_t i = 0; i + 1 < n_mid; i++) {
        const float b_re = mid_re[i], b_im = mid_im[i];         // y[2i + 1]
        const float c_re = x_re[i + 1], c_im = x_im[i + 1];     // y[2i + 2]
        steps[2 * i + 1] = fast_atan2(c_im * b_re - c_re * b_im, c_re * b_re + c_im * b_im);
    }
}

// One step of a running median's window, kept sorted: `sorted` (w values, ascending, between
// two sentinels: sorted[-1] = -inf, sorted[w] = +inf) loses one value equal to `out` and gains
// `in`; the result, ascending, goes to `next` (same layout). Every output is a select among its
// neighbours (no binary search, no memmove), so both clones vectorise it: an erase and an
// insert on a std::vector took 15 % of an estimate (perf), their searches mispredicting.
MODREC_HOT_LOOP
void slide_sorted(const double* sorted, long w, double out, double in, double* next)
{
    long below_out = 0, below_in = 0; // where `out` is (its first copy) and where `in` goes
    for (long i = 0; i < w; i++) {
        below_out += sorted[i] < out ? 1 : 0;
        below_in += sorted[i] < in ? 1 : 0;
    }
    const long p = below_out;                        // sorted[p] == out is removed ...
    const long q = below_in - (out < in ? 1 : 0);    // ... and `in` inserted at q of what is left
    for (long i = 0; i < w; i++) {
        // what is left, b[j] = j < p ? sorted[j] : sorted[j + 1], at j = i and j = i - 1
        const double b_i = i < p ? sorted[i] : sorted[i + 1];
        const double b_prev = i - 1 < p ? sorted[i - 1] : sorted[i];
        next[i] = i < q ? b_i : (i == q ? in : b_prev);
    }
}

// Welch's inner loops for one segment: `in` = (seg - mean) * window (float, as numpy's detrend
// and window do), and after the FFT, `spectrum` += |out|^2 (each |out|^2 in float, summed in
// float64). Element by element, so both clones round alike.
MODREC_HOT_LOOP
void windowed(const float* seg, float mean, const float* window, size_t n, float* in)
{
    for (size_t i = 0; i < n; i++) {
        in[i] = (seg[i] - mean) * window[i];
    }
}

MODREC_HOT_LOOP
void add_power(const gr_complex* out, size_t bins, double* spectrum)
{
    const float* v = reinterpret_cast<const float*>(out);
    for (size_t k = 0; k < bins; k++) {
        const float re = v[2 * k], im = v[2 * k + 1];
        spectrum[k] += static_cast<double>(re * re + im * im);
    }
}

// x[i] = float(x[i] * gain), the product in float64 (gain may exceed float32's range).
MODREC_HOT_LOOP
void scale_by(float* x, size_t n, double gain)
{
    for (size_t i = 0; i < n; i++) {
        x[i] = static_cast<float>(x[i] * gain);
    }
}

} // namespace

struct symbol_rate_estimator::impl {
    int segment_len;
    double min_sps, max_sps, line_strength;
    std::vector<float> taps;
    int median_half_width;
    double harmonic_share, min_line_amplitude, max_non_finite;

    gr::fft::fft_real_fwd fft; // 2 segment_len points: the features run at twice the stream's rate
    std::vector<float> window; // periodic Hann, as scipy.signal.get_window("hann", n)
    double window_power;       // 1 / (sum of the window)^2: Welch's "spectrum" scaling
    std::vector<float> x_re, x_im, mid_re, mid_im;
    std::vector<float> envelope, steps; // steps: the phase steps, then their changes
    std::vector<double> spectrum, ratio, neighbours;
    std::vector<char> searched;

    impl(int segment_len_,
         double min_sps_,
         double max_sps_,
         double line_strength_,
         const std::vector<double>& taps_,
         int median_half_width_,
         double harmonic_share_,
         double min_line_amplitude_,
         double max_non_finite_)
        : segment_len(segment_len_),
          min_sps(min_sps_),
          max_sps(max_sps_),
          line_strength(line_strength_),
          taps(taps_.begin(), taps_.end()),
          median_half_width(median_half_width_),
          harmonic_share(harmonic_share_),
          min_line_amplitude(min_line_amplitude_),
          max_non_finite(max_non_finite_),
          fft(2 * segment_len_, 1)
    {
        const int n = 2 * segment_len;
        window.resize(n);
        double sum = 0.0;
        for (int i = 0; i < n; i++) {
            const double w = 0.5 - 0.5 * std::cos(2.0 * M_PI * i / n);
            window[i] = static_cast<float>(w);
            sum += static_cast<float>(w);
        }
        window_power = 1.0 / (sum * sum);
        spectrum.resize(segment_len + 1);
        ratio.resize(segment_len + 1);
        neighbours.resize(2 * (2 * median_half_width + 1) + 4); // two windows, each between sentinels
    }

    // Welch's averaged one-sided power spectrum of a real feature into `spectrum`.
    void welch(const std::vector<float>& feature)
    {
        const size_t nseg = 2 * static_cast<size_t>(segment_len);
        const size_t segments = feature.size() / nseg;
        const size_t bins = segment_len + 1;
        std::fill(spectrum.begin(), spectrum.end(), 0.0);
        float* in = fft.get_inbuf();
        const gr_complex* out = fft.get_outbuf();
        for (size_t s = 0; s < segments; s++) {
            const float* seg = feature.data() + s * nseg;
            windowed(seg, static_cast<float>(sum(seg, nseg) / nseg), window.data(), nseg, in);
            fft.execute();
            add_power(out, bins, spectrum.data());
        }
        const double scale = window_power / segments;
        for (size_t k = 0; k < bins; k++) {
            // one-sided: every bin but 0 Hz and Nyquist holds its negative frequency's power too
            spectrum[k] *= (k == 0 || k == bins - 1) ? scale : 2.0 * scale;
        }
    }

    // `spectrum` over its running median (floored) at the searched bins, 0 elsewhere. The
    // median's window is kept sorted as it slides (slide_sorted): one value out, one in, per bin.
    void line_ratio()
    {
        const long bins = segment_len + 1;
        const long h = median_half_width, w = 2 * h + 1;
        const double lowest = min_line_amplitude * min_line_amplitude / 2.0 / line_strength;
        auto at = [&](long k) { return spectrum[std::clamp(k, 0L, bins - 1)]; };
        // two sorted windows between sentinels, the current one and the next
        double* current = neighbours.data() + 1;
        double* next = neighbours.data() + w + 3;
        current[-1] = next[-1] = -std::numeric_limits<double>::infinity();
        bool sliding = false; // current holds bin k - 1's window
        for (long k = 0; k < bins; k++) {
            if (!searched[k]) {
                ratio[k] = 0.0;
                sliding = false;
                continue;
            }
            if (sliding) {
                slide_sorted(current, w, at(k - 1 - h), at(k + h), next);
                std::swap(current, next);
            } else {
                for (long j = -h; j <= h; j++) {
                    current[j + h] = at(k + j);
                }
                std::sort(current, current + w);
                sliding = true;
            }
            current[w] = std::numeric_limits<double>::infinity();
            ratio[k] = spectrum[k] / std::max(current[h], lowest);
        }
    }
};

symbol_rate_estimator::symbol_rate_estimator(int segment_len,
                                             double min_sps,
                                             double max_sps,
                                             double line_strength,
                                             const std::vector<double>& half_sample_taps,
                                             int median_half_width,
                                             double harmonic_share,
                                             double min_line_amplitude,
                                             double max_non_finite)
    : d_segment_len(segment_len)
{
    if (segment_len < 64) {
        throw bad("segment_len must be >= 64, got " + std::to_string(segment_len));
    }
    if (!(1.0 < min_sps && min_sps < max_sps && max_sps <= segment_len / 4.0)) {
        throw bad("expected 1 < min_sps < max_sps <= segment_len / 4, got " +
                  std::to_string(min_sps) + ", " + std::to_string(max_sps));
    }
    if (!(line_strength > 0.0)) {
        throw bad("line_strength must be > 0, got " + std::to_string(line_strength));
    }
    if (half_sample_taps.size() < 2 || half_sample_taps.size() % 2) {
        throw bad("half_sample_taps must be an even number (>= 2) of taps, got " +
                  std::to_string(half_sample_taps.size()));
    }
    if (median_half_width < 1) {
        throw bad("median_half_width must be >= 1, got " + std::to_string(median_half_width));
    }
    if (!(harmonic_share > 0.0 && harmonic_share <= 1.0)) {
        throw bad("harmonic_share must be in (0, 1], got " + std::to_string(harmonic_share));
    }
    if (!(min_line_amplitude > 0.0)) {
        throw bad("min_line_amplitude must be > 0, got " + std::to_string(min_line_amplitude));
    }
    if (!(max_non_finite >= 0.0 && max_non_finite < 1.0)) {
        throw bad("max_non_finite must be in [0, 1), got " + std::to_string(max_non_finite));
    }
    d_impl = std::make_unique<impl>(segment_len,
                                    min_sps,
                                    max_sps,
                                    line_strength,
                                    half_sample_taps,
                                    median_half_width,
                                    harmonic_share,
                                    min_line_amplitude,
                                    max_non_finite);
}

symbol_rate_estimator::~symbol_rate_estimator() = default;

symbol_rate_line
symbol_rate_estimator::estimate(const gr_complex* samples, size_t n, int interpolated_by)
{
    impl& s = *d_impl;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (n < 4 * static_cast<size_t>(s.segment_len)) {
        throw bad("expected at least " + std::to_string(4 * s.segment_len) + " samples (4 segments of " +
                  std::to_string(s.segment_len) + "), got " + std::to_string(n));
    }
    if (interpolated_by < 1) {
        throw bad("interpolated_by must be >= 1, got " + std::to_string(interpolated_by));
    }

    // A few bad samples (a dropped buffer) are zeroed rather than costing the window. The window
    // is scaled to a peak of 1 so float32 cannot overflow in |x|^2 at any level; neither feature
    // depends on the gain.
    s.x_re.resize(n);
    s.x_im.resize(n);
    size_t non_finite = 0;
    const float peak = split_finite(samples, n, s.x_re.data(), s.x_im.data(), non_finite);
    if (static_cast<double>(non_finite) / n > s.max_non_finite) {
        return { nan, 0.0 };
    }
    if (!(peak > 0.0f)) { // silence
        return { nan, 0.0 };
    }
    // in float64: 1 / peak overflows float32 for a subnormal peak
    const double gain = 1.0 / peak;
    scale_by(s.x_re.data(), n, gain);
    scale_by(s.x_im.data(), n, gain);

    // Interpolated by 2 (why: oversampling.py): y[2i] = x[i + half], y[2i + 1] between them.
    const size_t n_taps = s.taps.size(), half = n_taps / 2 - 1;
    const size_t n_mid = n - n_taps + 1;
    s.mid_re.resize(n_mid);
    s.mid_im.resize(n_mid);
    interpolate_mid(s.taps.data(), n_taps, s.x_re.data(), s.x_im.data(), n_mid, s.mid_re.data(), s.mid_im.data());
    const size_t m = 2 * n_mid;
    s.envelope.resize(m);
    s.steps.resize(m - 1);
    envelope_and_steps(s.x_re.data() + half,
                       s.x_im.data() + half,
                       s.mid_re.data(),
                       s.mid_im.data(),
                       n_mid,
                       s.envelope.data(),
                       s.steps.data());
    const double level = sum(s.envelope.data(), m) / m;
    if (!(level > 0.0)) {
        return { nan, 0.0 };
    }
    const float inverse_level = static_cast<float>(1.0 / level);
    for (auto& e : s.envelope) {
        e *= inverse_level;
    }
    // |changes of the instantaneous frequency|: the phase steps differenced, in place (each
    // value reads its own step and the next one, which is not yet overwritten)
    float* changes = s.steps.data();
    for (size_t i = 0; i + 2 < m; i++) {
        changes[i] = std::fabs(changes[i + 1] - changes[i]);
    }
    s.steps.resize(m - 2);

    const long bins = s.segment_len + 1;
    s.searched.assign(bins, 0);
    for (long k = 0; k < bins; k++) {
        const double f = static_cast<double>(k) / s.segment_len;
        s.searched[k] = f >= 1.0 / s.max_sps && f <= 1.0 / s.min_sps;
    }
    for (int k = 1; k < interpolated_by; k++) { // the interpolator's lines, with their leakage
        const long centre = std::lround(static_cast<double>(k) * s.segment_len / interpolated_by);
        for (long j = std::max(centre - 2, 0L); j < std::min(centre + 3, bins); j++) {
            s.searched[j] = 0;
        }
    }

    symbol_rate_line best{ nan, 0.0 };
    for (const std::vector<float>* feature : { &s.envelope, &s.steps }) {
        s.welch(*feature);
        s.line_ratio();
        long k = std::max_element(s.ratio.begin(), s.ratio.end()) - s.ratio.begin();
        const double strength = s.ratio[k];
        for (int divisor : { 3, 2 }) { // the lowest harmonic first
            // Python's round(): halves to even
            const long j = static_cast<long>(std::nearbyint(static_cast<double>(k) / divisor));
            const long lo = std::max(j - 1, 0L), hi = std::min(j + 2, bins);
            if (s.searched[j] && *std::max_element(s.ratio.begin() + lo, s.ratio.begin() + hi) >=
                                     s.harmonic_share * strength) {
                k = std::max_element(s.ratio.begin() + lo, s.ratio.begin() + hi) - s.ratio.begin();
                break;
            }
        }
        if (strength > best.strength && k > 0) {
            best = { static_cast<double>(s.segment_len) / k, strength };
        }
    }
    if (best.strength < s.line_strength) {
        return { nan, best.strength };
    }
    return best;
}

} /* namespace modrec */
} /* namespace gr */
