/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

// The C++ core with a C++ classify function, no Python: the output is the input, every frame's
// tag sits on its first sample with the decision the function gave, upstream tags keep their
// offsets, and the tail held behind an incomplete frame is flushed at the end of the stream.

#include <gnuradio/attributes.h>
#include <gnuradio/blocks/head.h>
#include <gnuradio/blocks/vector_sink.h>
#include <gnuradio/blocks/vector_source.h>
#include <gnuradio/modrec/classifier_core.h>
#include <gnuradio/top_block.h>
#include <boost/test/unit_test.hpp>
#include <cmath>

namespace {

const std::vector<std::string> LABELS = { "low", "high", "unknown" };

// class "high" (1) when a frame's first sample has a positive real part, else "low" (0);
// probs (0.25, 0.75) or (0.75, 0.25); snr_db the first sample's real part
void classify_by_sign(const gr_complex* frames,
                      size_t n,
                      size_t frame_len,
                      gr::modrec::frame_decisions& out)
{
    for (size_t k = 0; k < n; k++) {
        const float first = frames[k * frame_len].real();
        const bool high = first > 0;
        out.index[k] = high ? 1 : 0;
        out.confidence[k] = 0.75f;
        out.probs[2 * k] = high ? 0.25f : 0.75f;
        out.probs[2 * k + 1] = high ? 0.75f : 0.25f;
        if (!out.snr_db.empty()) {
            out.snr_db[k] = first;
        }
    }
}

std::vector<gr_complex> ramp(size_t n)
{
    std::vector<gr_complex> x(n);
    for (size_t i = 0; i < n; i++) {
        x[i] = gr_complex(std::sin(0.05f * i), static_cast<float>(i));
    }
    return x;
}

} // namespace

BOOST_AUTO_TEST_CASE(t1_passthrough_tags_and_tail)
{
    const int frame_len = 16;
    for (int hop : { 5, 16, 23 }) {
        const size_t n = 1000;
        auto x = ramp(n);
        std::vector<gr::tag_t> upstream(1);
        upstream[0].offset = 999; // the last sample: held behind an incomplete frame until the end
        upstream[0].key = pmt::intern("upstream");
        upstream[0].value = pmt::from_long(7);
        auto src = gr::blocks::vector_source_c::make(x, false, 1, upstream);
        size_t calls = 0;
        auto core = gr::modrec::classifier_core::make(
            frame_len,
            hop,
            hop == 5 ? 1 : 7,
            "modrec",
            LABELS,
            2,
            false,
            true,
            false,
            [&calls, frame_len](const gr_complex* f, size_t k, gr::modrec::frame_decisions& d) {
                calls++;
                classify_by_sign(f, k, frame_len, d);
            },
            {});
        auto snk = gr::blocks::vector_sink_c::make();
        auto tb = gr::make_top_block("qa_classifier_core");
        tb->connect(src, 0, core, 0);
        tb->connect(core, 0, snk, 0);
        tb->run();

        BOOST_REQUIRE_EQUAL(snk->data().size(), n);
        BOOST_CHECK(snk->data() == x);
        BOOST_CHECK_EQUAL(core->items_in(), n);
        BOOST_CHECK_EQUAL(core->items_out(), n);
        BOOST_CHECK_EQUAL(core->held(), 0u);
        BOOST_CHECK(calls > 0);

        size_t expected_frames = (n - frame_len) / hop + 1;
        size_t frames = 0;
        bool upstream_seen = false;
        for (const auto& tag : snk->tags()) {
            if (pmt::eq(tag.key, pmt::intern("upstream"))) {
                upstream_seen = true;
                BOOST_CHECK_EQUAL(tag.offset, 999u);
                continue;
            }
            BOOST_REQUIRE(pmt::eq(tag.key, pmt::intern("modrec")));
            BOOST_CHECK_EQUAL(tag.offset, frames * hop);
            const bool high = x[tag.offset].real() > 0;
            pmt::pmt_t cls = pmt::dict_ref(tag.value, pmt::intern("class"), pmt::PMT_NIL);
            BOOST_CHECK_EQUAL(pmt::symbol_to_string(cls), high ? "high" : "low");
            BOOST_CHECK_EQUAL(pmt::to_uint64(pmt::dict_ref(
                                  tag.value, pmt::intern("frame_start"), pmt::PMT_NIL)),
                              tag.offset);
            BOOST_CHECK_EQUAL(
                pmt::to_long(pmt::dict_ref(tag.value, pmt::intern("frame_len"), pmt::PMT_NIL)),
                frame_len);
            BOOST_CHECK_CLOSE(
                pmt::to_double(pmt::dict_ref(tag.value, pmt::intern("snr_db"), pmt::PMT_NIL)),
                x[tag.offset].real(),
                1e-4);
            BOOST_CHECK(!pmt::dict_has_key(tag.value, pmt::intern("exit")));
            frames++;
        }
        BOOST_CHECK_EQUAL(frames, expected_frames);
        BOOST_CHECK(upstream_seen);
    }
}

BOOST_AUTO_TEST_CASE(t2_unknown_and_bad_arguments)
{
    auto x = ramp(64);
    auto src = gr::blocks::vector_source_c::make(x, false);
    auto core = gr::modrec::classifier_core::make(
        16,
        16,
        3,
        "modrec",
        LABELS,
        2,
        true,
        false,
        false,
        [](const gr_complex*, size_t k, gr::modrec::frame_decisions& d) {
            for (size_t i = 0; i < k; i++) {
                d.index[i] = -1; // unknown: the last label
                d.exits[i] = 3;
            }
        },
        {});
    auto snk = gr::blocks::vector_sink_c::make();
    auto tb = gr::make_top_block("qa_classifier_core_unknown");
    tb->connect(src, 0, core, 0);
    tb->connect(core, 0, snk, 0);
    tb->run();
    BOOST_REQUIRE_EQUAL(snk->tags().size(), 4u);
    for (const auto& tag : snk->tags()) {
        BOOST_CHECK_EQUAL(
            pmt::symbol_to_string(pmt::dict_ref(tag.value, pmt::intern("class"), pmt::PMT_NIL)),
            "unknown");
        BOOST_CHECK_EQUAL(
            pmt::to_long(pmt::dict_ref(tag.value, pmt::intern("index"), pmt::PMT_NIL)), -1);
        BOOST_CHECK_EQUAL(
            pmt::to_long(pmt::dict_ref(tag.value, pmt::intern("exit"), pmt::PMT_NIL)), 3);
    }

    auto noop = [](const gr_complex*, size_t, gr::modrec::frame_decisions&) {};
    BOOST_CHECK_THROW(
        gr::modrec::classifier_core::make(0, 16, 1, "k", LABELS, 2, false, false, false, noop, {}),
        std::invalid_argument);
    BOOST_CHECK_THROW(
        gr::modrec::classifier_core::make(16, 0, 1, "k", LABELS, 2, false, false, false, noop, {}),
        std::invalid_argument);
    BOOST_CHECK_THROW(
        gr::modrec::classifier_core::make(16, 16, 1, "k", LABELS, 3, false, false, false, noop, {}),
        std::invalid_argument);
    BOOST_CHECK_THROW(
        gr::modrec::classifier_core::make(16, 16, 1, "k", LABELS, 2, false, false, false, {}, {}),
        std::invalid_argument);
    BOOST_CHECK_THROW(
        gr::modrec::classifier_core::make(16, 16, 0, "k", LABELS, 2, false, false, false, noop, {}),
        std::invalid_argument);
}
