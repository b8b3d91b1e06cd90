/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_MODREC_CLASSIFIER_CORE_IMPL_H
#define INCLUDED_MODREC_CLASSIFIER_CORE_IMPL_H

#include <gnuradio/modrec/classifier_core.h>
#include <pmt/pmt.h>
#include <array>
#include <chrono>
#include <deque>
#include <optional>

namespace gr {
namespace modrec {

class classifier_core_impl : public classifier_core
{
public:
    classifier_core_impl(int frame_len,
                         int hop,
                         int max_batch,
                         const std::string& tag_key,
                         const std::vector<std::string>& labels,
                         int n_classes,
                         bool tag_exit,
                         bool tag_snr,
                         bool tag_sps,
                         classify_function classify,
                         observe_function observe);

    bool start() override;
    bool stop() override;
    void forecast(int noutput_items, gr_vector_int& ninput_items_required) override;
    int general_work(int noutput_items,
                     gr_vector_int& ninput_items,
                     gr_vector_const_void_star& input_items,
                     gr_vector_void_star& output_items) override;

    uint64_t items_in() const override { return d_items_in; }
    uint64_t items_out() const override { return d_items_out; }
    size_t held() const override { return d_len + d_carry.size(); }

private:
    struct held_tag {
        uint64_t offset; // absolute input offset (relative to the carry in d_carry_tags)
        pmt::pmt_t key, value, srcid;
        bool frame = false; // a frame's tag (in d_carry_tags: its frame_start is rewritten)
    };

    // the framer: samples [d_start, d_start + d_len) held, next frame start d_next_frame
    uint64_t releasable(bool end_of_stream) const;
    void push(const gr_complex* samples, size_t n);
    void pop(gr_complex* out, size_t n);
    void release_tags(uint64_t released_to);
    void classify_complete(bool any, bool gather); // any: however few frames are complete
    pmt::pmt_t frame_tag(size_t k, uint64_t start, const frame_decisions& d);
    int send_carry(gr_complex* out, int noutput_items);
    bool input_ended(int ninput, int taken);

    using clock = std::chrono::steady_clock;
    // a call starting within BEHIND_GAP of the last one's return is behind the stream; frames are
    // gathered for at most GATHER_WAIT (see general_work)
    static constexpr std::chrono::microseconds BEHIND_GAP{ 1000 };
    static constexpr std::chrono::milliseconds GATHER_WAIT{ 10 };
    std::optional<clock::time_point> d_returned_at, d_gathering_since;
    const int d_frame_len, d_hop, d_max_batch, d_n_classes;
    const bool d_tag_exit, d_tag_snr, d_tag_sps;
    const classify_function d_classify;
    const observe_function d_observe;
    const pmt::pmt_t d_key, d_srcid, d_port, d_frame_len_pmt;
    std::vector<pmt::pmt_t> d_labels;
    // shared by every tag (see frame_tag): ((index . i) (class . label)) for i = -1 .. n_classes - 1,
    // (frame_len . L), and (sps_mismatch . #f) and (sps_mismatch . #t)
    std::vector<pmt::pmt_t> d_class_tails;
    pmt::pmt_t d_frame_len_field;
    std::array<pmt::pmt_t, 2> d_sps_mismatch_fields;
    // the last (sps_estimate . value) made, reused while the estimate stays (frame_tag)
    pmt::pmt_t d_sps_estimate_field;
    double d_sps_estimate_shared = 0.0;
    // (exit . e) for the exits seen so far, index e + 1 (e >= -1): a model has a few exits, and a
    // plain one tags every frame with the same
    std::vector<pmt::pmt_t> d_exit_fields;
    pmt::pmt_t d_f_class, d_f_index, d_f_confidence, d_f_probs, d_f_frame_len, d_f_frame_start,
        d_f_exit, d_f_snr, d_f_sps_estimate, d_f_sps_mismatch;

    // samples [d_start, d_start + d_len) held, at d_buf[d_head, d_head + d_len): released samples
    // leave d_head behind and are dropped from the front only once they outnumber the held ones,
    // so a sample is moved O(1) times (erasing at every release moved the whole hold each time)
    std::vector<gr_complex> d_buf;
    size_t d_head = 0, d_len = 0;
    uint64_t d_start = 0, d_next_frame = 0;
    // Tags held until their samples are released, each queue in offset order: the stream's own
    // (in arrival order) and the frames' (one per frame start). Released merged by offset, a
    // stream tag before a frame tag at the same offset: the order they arrived in.
    std::deque<held_tag> d_stream_tags;
    struct frame_tag_value {
        uint64_t offset;
        pmt::pmt_t value;
    };
    std::deque<frame_tag_value> d_frame_tags;
    std::vector<gr_complex> d_carry; // kept at a stop, sent first at the next start
    std::vector<held_tag> d_carry_tags;
    uint64_t d_shift = 0; // output offset - input offset in this run
    uint64_t d_items_in = 0, d_items_out = 0;
    std::vector<gr_complex> d_frames; // the batch handed to classify
    frame_decisions d_decisions;
};

} // namespace modrec
} // namespace gr

#endif /* INCLUDED_MODREC_CLASSIFIER_CORE_IMPL_H */
