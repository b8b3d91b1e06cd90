/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// The symbol-rate estimator without Python: a QPSK stream shows its samples per symbol at any
// gain, noise and silence show no line, a window of NaNs gives none, and bad arguments are
// refused with a message. (Its agreement with the numpy estimator, on every class of the
// generator, is tests/test_oversampling.py's.)

#include <gnuradio/modrec/symbol_rate_estimator.h>
#include <boost/test/unit_test.hpp>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

namespace {

// The constants of python/modrec/runtime/oversampling.py (estimator_constants()).
std::vector<double> half_sample_taps()
{
    std::vector<double> taps;
    double sum = 0.0;
    for (int k = -7; k <= 8; k++) {
        const double t = k - 0.5;
        const double sinc = std::sin(M_PI * t) / (M_PI * t);
        const double hann = 0.5 - 0.5 * std::cos(2.0 * M_PI * (k + 8) / 17.0); // np.hanning(18)[1:-1]
        taps.push_back(sinc * hann);
        sum += taps.back();
    }
    for (auto& t : taps) {
        t /= sum;
    }
    return taps;
}

gr::modrec::symbol_rate_estimator make_estimator()
{
    return gr::modrec::symbol_rate_estimator(1024, 1.6, 40.0, 10.0, half_sample_taps(), 16, 0.3, 1e-3, 0.01);
}

// QPSK at `sps` samples per symbol, raised-cosine-like pulses (a Hann pulse two symbols long, so
// the envelope varies at the symbol rate), plus white noise `noise` (rms per part)
std::vector<gr_complex> qpsk(int sps, size_t n, float gain, float noise, unsigned seed)
{
    std::mt19937 rng(seed);
    std::bernoulli_distribution bit(0.5);
    std::normal_distribution<float> gauss(0.0f, 1.0f);
    std::vector<gr_complex> x(n, 0.0f);
    for (size_t start = 0; start < n; start += sps) {
        const gr_complex symbol(bit(rng) ? 1.0f : -1.0f, bit(rng) ? 1.0f : -1.0f);
        for (int i = 0; i < 2 * sps && start + i < n; i++) {
            const float pulse = 0.5f - 0.5f * std::cos(2.0f * static_cast<float>(M_PI) * i / (2 * sps));
            x[start + i] += symbol * pulse;
        }
    }
    for (auto& v : x) {
        v = gain * (v + noise * gr_complex(gauss(rng), gauss(rng)));
    }
    return x;
}

} // namespace

BOOST_AUTO_TEST_CASE(t1_qpsk_shows_its_samples_per_symbol_at_any_gain)
{
    auto estimator = make_estimator();
    for (int sps : { 2, 4, 8, 12 }) {
        for (float gain : { 1e-6f, 1.0f, 1e15f }) {
            const auto x = qpsk(sps, 16384, gain, 0.1f, 7 + sps);
            const auto line = estimator.estimate(x.data(), x.size());
            BOOST_TEST_CONTEXT("sps " << sps << ", gain " << gain)
            {
                BOOST_CHECK(std::fabs(line.samples_per_symbol - sps) <= 0.05 * sps);
                BOOST_CHECK(line.strength >= 10.0);
            }
        }
    }
}

BOOST_AUTO_TEST_CASE(t2_noise_silence_and_nan_show_no_line)
{
    auto estimator = make_estimator();
    const auto noise = qpsk(4, 16384, 1.0f, 1e6f, 1); // the signal lost 120 dB under the noise
    auto line = estimator.estimate(noise.data(), noise.size());
    BOOST_CHECK(std::isnan(line.samples_per_symbol));
    BOOST_CHECK(line.strength < 10.0);

    const std::vector<gr_complex> silence(16384, 0.0f);
    line = estimator.estimate(silence.data(), silence.size());
    BOOST_CHECK(std::isnan(line.samples_per_symbol));
    BOOST_CHECK_EQUAL(line.strength, 0.0);

    auto x = qpsk(4, 16384, 1.0f, 0.1f, 2);
    x[100] = gr_complex(std::numeric_limits<float>::quiet_NaN(), 0.0f); // one bad sample: still found
    line = estimator.estimate(x.data(), x.size());
    BOOST_CHECK(std::fabs(line.samples_per_symbol - 4.0) <= 0.2);
    for (size_t i = 0; i < x.size() / 50; i++) { // 2 % of them: no estimate
        x[i] = gr_complex(std::numeric_limits<float>::infinity(), 0.0f);
    }
    line = estimator.estimate(x.data(), x.size());
    BOOST_CHECK(std::isnan(line.samples_per_symbol));
}

BOOST_AUTO_TEST_CASE(t3_bad_arguments_are_refused)
{
    auto estimator = make_estimator();
    const std::vector<gr_complex> few(1000, 1.0f);
    BOOST_CHECK_THROW(estimator.estimate(few.data(), few.size()), std::invalid_argument);
    const auto x = qpsk(4, 16384, 1.0f, 0.1f, 3);
    BOOST_CHECK_THROW(estimator.estimate(x.data(), x.size(), 0), std::invalid_argument);
    BOOST_CHECK_THROW(gr::modrec::symbol_rate_estimator(1024, 4.0, 2.0, 10.0, half_sample_taps(), 16, 0.3, 1e-3, 0.01),
                      std::invalid_argument);
    BOOST_CHECK_THROW(gr::modrec::symbol_rate_estimator(1024, 1.6, 40.0, 10.0, { 1.0, 2.0, 3.0 }, 16, 0.3, 1e-3, 0.01),
                      std::invalid_argument);
}
