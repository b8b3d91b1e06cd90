/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_MODREC_SYMBOL_RATE_ESTIMATOR_H
#define INCLUDED_MODREC_SYMBOL_RATE_ESTIMATOR_H

#include <gnuradio/gr_complex.h>
#include <gnuradio/modrec/api.h>
#include <cstddef>
#include <memory>
#include <vector>

namespace gr {
namespace modrec {

/*!
 * \brief The strongest symbol-rate line of a window of samples.
 */
struct MODREC_API symbol_rate_line {
    double samples_per_symbol; //!< 1 / the line's cyclic frequency; NaN: no line strong enough
    double strength;           //!< the line's height over its spectrum's running median; 0: none measured
};

/*!
 * \brief The samples per symbol of a stream, from the symbol-rate line of its cyclostationarity:
 * the C++ twin of estimate_samples_per_symbol in python/modrec/runtime/oversampling.py, where the
 * method, its sources and its measured behaviour are documented.
 * \ingroup modrec
 *
 * In short: the window is interpolated by 2 (\p half_sample_taps at offsets k - 1/2); the
 * squared envelope (relative to its mean) and the magnitude of the changes of the instantaneous
 * frequency get Welch spectra (periodic Hann segments of 2 \p segment_len samples, no overlap,
 * each segment's mean removed, "spectrum" scaling); each spectrum is divided by its running
 * median (\p median_half_width bins either side, the ends extended) or, where that is lower, by
 * the floor a sinusoid of amplitude \p min_line_amplitude needs to reach \p line_strength; the
 * strongest line between cyclic frequencies 1 / \p max_sps and 1 / \p min_sps cycles/sample wins,
 * moved to a line at 1/3 or 1/2 of its frequency that is \p harmonic_share as strong.
 *
 * All the method's constants are given by the caller (the Python module holds them), so the two
 * implementations cannot drift apart. The arithmetic is float32 after scaling the window to a
 * peak of 1 (the features do not depend on the gain), with float64 sums: estimates agree with the
 * Python one's, strengths within float32 rounding (tested on the oversampling study's signals).
 * The object keeps its FFT plan and work buffers: one object per thread.
 */
class MODREC_API symbol_rate_estimator
{
public:
    typedef std::shared_ptr<symbol_rate_estimator> sptr;

    /*!
     * \param segment_len Welch segment of the original stream, samples (>= 64)
     * \param min_sps, max_sps the oversampling searched (1 < min_sps < max_sps <= segment_len / 4)
     * \param line_strength a line is at least this many times its floor (> 0)
     * \param half_sample_taps the interpolator's taps (an even number, >= 2)
     * \param median_half_width bins either side of the running median (>= 1)
     * \param harmonic_share share of the strongest line's height a subharmonic needs (0..1]
     * \param min_line_amplitude the smallest line, in the feature's units (> 0)
     * \param max_non_finite share of NaN/Inf samples above which a window gives no estimate
     * Throws std::invalid_argument for values outside those ranges.
     */
    symbol_rate_estimator(int segment_len,
                          double min_sps,
                          double max_sps,
                          double line_strength,
                          const std::vector<double>& half_sample_taps,
                          int median_half_width,
                          double harmonic_share,
                          double min_line_amplitude,
                          double max_non_finite);
    ~symbol_rate_estimator();
    symbol_rate_estimator(const symbol_rate_estimator&) = delete;
    symbol_rate_estimator& operator=(const symbol_rate_estimator&) = delete;

    /*!
     * \brief The symbol-rate line of \p n contiguous samples at one rate.
     * \param samples complex64 samples, n >= 4 segment_len
     * \param interpolated_by the up factor of a resampler in front (>= 1): lines at multiples of
     * 1 / interpolated_by cycles/sample are its own and are not searched
     * Throws std::invalid_argument for too few samples or interpolated_by < 1.
     */
    symbol_rate_line estimate(const gr_complex* samples, size_t n, int interpolated_by = 1);

    int segment_len() const { return d_segment_len; }

private:
    struct impl;
    std::unique_ptr<impl> d_impl;
    int d_segment_len;
};

} // namespace modrec
} // namespace gr

#endif /* INCLUDED_MODREC_SYMBOL_RATE_ESTIMATOR_H */
