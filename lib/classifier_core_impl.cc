/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include "classifier_core_impl.h"
#include <gnuradio/block_detail.h>
#include <gnuradio/buffer_reader.h>
#include <gnuradio/io_signature.h>
#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace gr {
namespace modrec {

classifier_core::sptr classifier_core::make(int frame_len,
                                            int hop,
                                            int max_batch,
                                            const std::string& tag_key,
                                            const std::vector<std::string>& labels,
                                            int n_classes,
                                            bool tag_exit,
                                            bool tag_snr,
                                            bool tag_sps,
                                            classify_function classify,
                                            observe_function observe)
{
    return gnuradio::make_block_sptr<classifier_core_impl>(frame_len,
                                                           hop,
                                                           max_batch,
                                                           tag_key,
                                                           labels,
                                                           n_classes,
                                                           tag_exit,
                                                           tag_snr,
                                                           tag_sps,
                                                           std::move(classify),
                                                           std::move(observe));
}

static int checked_positive(const char* name, int value)
{
    if (value <= 0) {
        throw std::invalid_argument(std::string("modrec classifier_core: ") + name +
                                    " must be a positive integer, got " +
                                    std::to_string(value));
    }
    return value;
}

classifier_core_impl::classifier_core_impl(int frame_len,
                                           int hop,
                                           int max_batch,
                                           const std::string& tag_key,
                                           const std::vector<std::string>& labels,
                                           int n_classes,
                                           bool tag_exit,
                                           bool tag_snr,
                                           bool tag_sps,
                                           classify_function classify,
                                           observe_function observe)
    : gr::block("modrec_classifier_core",
                gr::io_signature::make(1, 1, sizeof(gr_complex)),
                gr::io_signature::make(1, 1, sizeof(gr_complex))),
      d_frame_len(checked_positive("frame_len", frame_len)),
      d_hop(checked_positive("hop", hop)),
      d_max_batch(checked_positive("max_batch", max_batch)),
      d_n_classes(checked_positive("n_classes", n_classes)),
      d_tag_exit(tag_exit),
      d_tag_snr(tag_snr),
      d_tag_sps(tag_sps),
      d_classify(std::move(classify)),
      d_observe(std::move(observe)),
      d_key(pmt::intern(tag_key)),
      d_srcid(pmt::intern("modrec_classifier")),
      d_port(pmt::intern("classification")),
      d_frame_len_pmt(pmt::from_long(frame_len))
{
    if (labels.size() != static_cast<size_t>(n_classes) + 1) {
        throw std::invalid_argument(
            "modrec classifier_core: labels must be the n_classes class labels and "
            "'unknown' last (" +
            std::to_string(n_classes + 1) + "), got " + std::to_string(labels.size()));
    }
    if (!d_classify) {
        throw std::invalid_argument("modrec classifier_core: a classify callback is needed");
    }
    for (const auto& label : labels) {
        d_labels.push_back(pmt::intern(label));
    }
    d_f_class = pmt::intern("class");
    d_f_index = pmt::intern("index");
    d_f_confidence = pmt::intern("confidence");
    d_f_probs = pmt::intern("probs");
    d_f_frame_len = pmt::intern("frame_len");
    d_f_frame_start = pmt::intern("frame_start");
    d_f_exit = pmt::intern("exit");
    d_f_snr = pmt::intern("snr_db");
    d_f_sps_estimate = pmt::intern("sps_estimate");
    d_f_sps_mismatch = pmt::intern("sps_mismatch");
    for (long index = -1; index < n_classes; index++) { // the tails frame_tag shares
        const pmt::pmt_t label = d_labels[index < 0 ? d_labels.size() - 1 : static_cast<size_t>(index)];
        d_class_tails.push_back(
            pmt::acons(d_f_index, pmt::from_long(index), pmt::acons(d_f_class, label, pmt::make_dict())));
    }
    d_frame_len_field = pmt::cons(d_f_frame_len, d_frame_len_pmt);
    d_sps_mismatch_fields = { pmt::cons(d_f_sps_mismatch, pmt::PMT_F), pmt::cons(d_f_sps_mismatch, pmt::PMT_T) };
    // The scheduler would shift propagated tags by our output lag; they are re-emitted at their
    // original offsets when the samples they sit on are released.
    set_tag_propagation_policy(TPP_DONT);
    message_port_register_out(d_port);
    d_buf.reserve(std::max(4 * frame_len, 4096));
}

bool classifier_core_impl::start()
{
    // Every start, the restart of lock()/unlock() included, begins at item 0 (GNU Radio 3.10
    // rebuilds buffers then); what stop() kept leaves first and the new offsets follow it.
    d_buf.clear();
    d_head = 0;
    d_len = 0;
    d_start = 0;
    d_next_frame = 0;
    d_stream_tags.clear();
    d_frame_tags.clear();
    d_shift = 0;
    d_returned_at.reset();
    d_gathering_since.reset();
    if (d_observe) {
        d_observe(nullptr, 0); // a new run: the observer starts over
    }
    return block::start();
}

bool classifier_core_impl::stop()
{
    // Samples held behind an incomplete frame, and the tags on them, would vanish at the next
    // start: keep them to send first then, the frames complete in them classified (the next run's
    // frames start at its own offset 0). At the end of a stream everything has been flushed.
    classify_complete(true, false);
    if (d_len) {
        const uint64_t kept = d_carry.size();
        // stream tags first: send_carry's stable sort then keeps a stream tag ahead of a frame
        // tag at the same offset, as release_tags does
        for (const auto& t : d_stream_tags) {
            d_carry_tags.push_back({ kept + t.offset - d_start, t.key, t.value, t.srcid });
        }
        for (const auto& t : d_frame_tags) {
            d_carry_tags.push_back({ kept + t.offset - d_start, d_key, t.value, d_srcid, true });
        }
        d_carry.insert(d_carry.end(), d_buf.begin() + d_head, d_buf.begin() + d_head + d_len);
        d_start += d_len;
        d_buf.clear();
        d_head = 0;
        d_len = 0;
    }
    d_stream_tags.clear();
    d_frame_tags.clear();
    return block::stop();
}

uint64_t classifier_core_impl::releasable(bool end_of_stream) const
{
    const uint64_t end = d_start + d_len;
    return end_of_stream ? end : std::min(d_next_frame, end);
}

void classifier_core_impl::push(const gr_complex* samples, size_t n)
{
    d_buf.insert(d_buf.end(), samples, samples + n);
    d_len += n;
}

void classifier_core_impl::pop(gr_complex* out, size_t n)
{
    std::copy(d_buf.begin() + d_head, d_buf.begin() + d_head + n, out);
    d_head += n;
    d_len -= n;
    if (d_head >= d_len) { // more released than held: drop the released ones
        d_buf.erase(d_buf.begin(), d_buf.begin() + d_head);
        d_head = 0;
    }
    d_start += n;
    if (d_next_frame < d_start) { // only after an end-of-stream flush
        d_next_frame = (d_start + d_hop - 1) / d_hop * d_hop;
    }
}

pmt::pmt_t classifier_core_impl::frame_tag(size_t k, uint64_t start, const frame_decisions& d)
{
    // The field order and PMT types of the Python core (python/modrec/classifier.py). Each field
    // is prepended with acons, which is what pmt::dict_add does for a key the dict lacks, without
    // dict_add's search of the dict for it first (the keys here are distinct by construction).
    // A PMT dict is persistent (functional: dict_add and dict_delete build new cells), so cells
    // that hold the same in every tag are made once and shared: the dict's tail of class and
    // index (one per decision) and the pairs of frame_len and sps_mismatch. A tag is about two
    // dozen small allocations, most of the C++ core's time per frame (docs/BENCHMARKS.md).
    const int64_t idx = d.index[k];
    pmt::pmt_t value;
    if (idx >= -1 && idx < d_n_classes) {
        value = d_class_tails[static_cast<size_t>(idx + 1)];
    } else {
        value = pmt::acons(d_f_class, d_labels.at(idx < 0 ? d_labels.size() - 1 : static_cast<size_t>(idx)),
                           pmt::make_dict());
        value = pmt::acons(d_f_index, pmt::from_long(idx), value);
    }
    value = pmt::acons(d_f_confidence, pmt::from_double(d.confidence[k]), value);
    value = pmt::acons(
        d_f_probs,
        pmt::init_f32vector(d_n_classes, d.probs.data() + k * static_cast<size_t>(d_n_classes)),
        value);
    value = pmt::dcons(d_frame_len_field, value);
    value = pmt::acons(d_f_frame_start, pmt::from_uint64(start + d_shift), value);
    if (d_tag_exit) {
        const int64_t exit = d.exits[k];
        if (exit >= -1 && exit < 255) { // an exit index; anything else is not worth a cell
            const size_t i = static_cast<size_t>(exit + 1);
            if (i >= d_exit_fields.size()) {
                d_exit_fields.resize(i + 1);
            }
            if (!d_exit_fields[i]) {
                d_exit_fields[i] = pmt::cons(d_f_exit, pmt::from_long(exit));
            }
            value = pmt::dcons(d_exit_fields[i], value);
        } else {
            value = pmt::acons(d_f_exit, pmt::from_long(exit), value);
        }
    }
    if (d_tag_snr) {
        value = pmt::acons(d_f_snr, pmt::from_double(d.snr_db[k]), value);
    }
    if (d_tag_sps) {
        // one window's estimate judges a run of frames (128 at hop = frame_len): its field too
        const double estimate = d.sps_estimate[k];
        if (!d_sps_estimate_field || std::memcmp(&estimate, &d_sps_estimate_shared, sizeof estimate) != 0) {
            d_sps_estimate_shared = estimate; // compared as bits: NaN (no line) matches NaN
            d_sps_estimate_field = pmt::cons(d_f_sps_estimate, pmt::from_double(estimate));
        }
        value = pmt::dcons(d_sps_estimate_field, value);
        value = pmt::dcons(d_sps_mismatch_fields[d.sps_mismatch[k] != 0 ? 1 : 0], value);
    }
    return value;
}

void classifier_core_impl::classify_complete(bool any, bool gather)
{
    const uint64_t end = d_start + d_len;
    if (end < static_cast<uint64_t>(d_frame_len) || d_next_frame > end - d_frame_len) {
        return;
    }
    const uint64_t last = end - d_frame_len;
    const size_t n = (last - d_next_frame) / d_hop + 1;
    if (n < static_cast<size_t>(d_max_batch) && gather && !any) {
        return; // gathered into a larger batch (see general_work)
    }
    d_frames.resize(n * d_frame_len);
    for (size_t k = 0; k < n; k++) {
        const size_t rel = d_next_frame + k * d_hop - d_start;
        std::copy(d_buf.begin() + d_head + rel,
                  d_buf.begin() + d_head + rel + d_frame_len,
                  d_frames.begin() + k * d_frame_len);
    }
    frame_decisions& d = d_decisions;
    d.index.assign(n, -1);
    d.confidence.assign(n, 0.0f);
    d.probs.assign(n * d_n_classes, 0.0f);
    d.exits.assign(d_tag_exit ? n : 0, -1);
    d.snr_db.assign(d_tag_snr ? n : 0, 0.0f);
    d.sps_estimate.assign(d_tag_sps ? n : 0, 0.0);
    d.sps_mismatch.assign(d_tag_sps ? n : 0, 0);
    d_classify(d_frames.data(), n, d);
    for (size_t k = 0; k < n; k++) {
        const uint64_t start = d_next_frame + k * d_hop;
        pmt::pmt_t value = frame_tag(k, start, d);
        d_frame_tags.push_back({ start, value });
        message_port_pub(d_port, value);
    }
    d_next_frame += n * d_hop;
}

int classifier_core_impl::send_carry(gr_complex* out, int noutput_items)
{
    const size_t n = std::min(static_cast<size_t>(noutput_items), d_carry.size());
    std::copy(d_carry.begin(), d_carry.begin() + n, out);
    const uint64_t first = nitems_written(0);
    std::stable_sort(d_carry_tags.begin(),
                     d_carry_tags.end(),
                     [](const held_tag& a, const held_tag& b) { return a.offset < b.offset; });
    std::vector<held_tag> keep;
    for (const auto& t : d_carry_tags) {
        if (t.offset < n) {
            // A frame's tag says where the frame starts: offsets restarted at the start, so its
            // frame_start becomes the offset the tag now sits on (the message keeps the old run's)
            const pmt::pmt_t value =
                t.frame ? pmt::dict_add(t.value, d_f_frame_start, pmt::from_uint64(first + t.offset)) : t.value;
            add_item_tag(0, first + t.offset, t.key, value, t.srcid);
        } else {
            keep.push_back({ t.offset - n, t.key, t.value, t.srcid, t.frame });
        }
    }
    d_carry_tags.swap(keep);
    d_carry.erase(d_carry.begin(), d_carry.begin() + n);
    d_shift += n;
    d_items_out += n;
    return static_cast<int>(n);
}

bool classifier_core_impl::input_ended(int ninput, int taken)
{
    // Upstream is done and this call took everything it wrote: no more samples will come.
    block_detail_sptr det = detail();
    if (!det || taken != ninput) {
        return false;
    }
    buffer_reader_sptr reader = det->input(0);
    gr::thread::scoped_lock guard(*reader->mutex());
    // done first: once set, items_available() is final (called before this call's consume())
    return reader->done() && reader->items_available() == ninput;
}

void classifier_core_impl::forecast(int noutput_items, gr_vector_int& ninput_items_required)
{
    if (!d_carry.empty()) {
        ninput_items_required[0] = 0; // samples kept at the last stop go out first
    } else if (d_len == 0) {
        ninput_items_required[0] = 1;
    } else if (releasable(false) > d_start) {
        ninput_items_required[0] = 0;
    } else {
        // Everything buffered is held behind an incomplete frame: only new input or the end of
        // the stream can move us. At the end, ask for nothing, so that the scheduler calls
        // general_work() once more to flush instead of retiring the block with samples inside.
        // (It read items_available and done before this call; done only turns true, so asking
        // for one item while upstream runs never retires us early.)
        block_detail_sptr det = detail();
        ninput_items_required[0] = (det && det->input(0)->done()) ? 0 : 1;
    }
}

int classifier_core_impl::general_work(int noutput_items,
                                       gr_vector_int& ninput_items,
                                       gr_vector_const_void_star& input_items,
                                       gr_vector_void_star& output_items)
{
    const gr_complex* in = static_cast<const gr_complex*>(input_items[0]);
    gr_complex* out = static_cast<gr_complex*>(output_items[0]);
    // Behind the stream: this call starts right after the last one returned (its input was
    // already waiting). Then the complete frames are gathered, up to max_batch and for at most
    // GATHER_WAIT, into one batch: Python, numpy and ONNX Runtime cost less per frame in larger
    // batches, and the input behind them is waiting anyway. A block that keeps up (the gap is the
    // time until the next chunk arrives: a throttled or slow stream) classifies each call's
    // frames at once, so gathering never delays a stream the block keeps up with.
    const clock::time_point now = clock::now();
    const bool behind = d_returned_at && now - *d_returned_at < BEHIND_GAP;
    struct stamp {
        std::optional<clock::time_point>& at;
        ~stamp() { at = clock::now(); }
    } returned{ d_returned_at };
    if (!d_carry.empty()) {
        return send_carry(out, noutput_items);
    }
    const uint64_t read_before = nitems_read(0);

    // Bounded intake: noutput + one batch's span buffered always lets at least noutput items go.
    const long hold = d_frame_len + static_cast<long>(d_max_batch - 1) * d_hop;
    const long room = static_cast<long>(noutput_items) + hold - static_cast<long>(d_len);
    const int take =
        static_cast<int>(std::min<long>(ninput_items[0], std::max<long>(0, room)));
    if (take > 0) {
        std::vector<tag_t> tags;
        get_tags_in_range(tags, 0, read_before, read_before + take);
        std::stable_sort(tags.begin(), tags.end(), [](const tag_t& a, const tag_t& b) {
            return a.offset < b.offset;
        });
        for (auto& t : tags) {
            d_stream_tags.push_back({ t.offset, std::move(t.key), std::move(t.value), std::move(t.srcid) });
        }
        push(in, take);
        if (d_observe) {
            d_observe(in, take);
        }
    }
    // Before consume(), which moves the read pointer at once: after it, items_available() counts
    // only what upstream wrote since, and its last chunk, arriving just then, read as "nothing
    // left" (a frame spanning it went unclassified, 1 run in 60 with 50-item chunks).
    const bool end_of_stream = input_ended(ninput_items[0], take);
    if (take > 0) {
        consume(0, take);
        d_items_in += take;
    }
    if (!behind || !d_gathering_since) {
        d_gathering_since = now; // the first call of a gathering (it ends at the next classify)
    }
    const bool gather = behind && now - *d_gathering_since < GATHER_WAIT;
    const uint64_t classified = d_next_frame;
    classify_complete(end_of_stream, gather);
    if (d_next_frame != classified) {
        d_gathering_since.reset();
    }

    const uint64_t to = releasable(end_of_stream);
    if (to <= d_start) {
        return 0;
    }
    const int n = static_cast<int>(std::min<uint64_t>(noutput_items, to - d_start));
    pop(out, n);
    d_items_out += n;
    release_tags(d_start);
    return n;
}

void classifier_core_impl::release_tags(uint64_t released_to)
{
    // Both queues are in offset order, so the tags on released samples are at their fronts.
    for (;;) {
        const bool stream = !d_stream_tags.empty() && d_stream_tags.front().offset < released_to;
        const bool frame = !d_frame_tags.empty() && d_frame_tags.front().offset < released_to;
        if (stream && (!frame || d_stream_tags.front().offset <= d_frame_tags.front().offset)) {
            const held_tag& t = d_stream_tags.front();
            add_item_tag(0, t.offset + d_shift, t.key, t.value, t.srcid);
            d_stream_tags.pop_front();
        } else if (frame) {
            const frame_tag_value& t = d_frame_tags.front();
            add_item_tag(0, t.offset + d_shift, d_key, t.value, d_srcid);
            d_frame_tags.pop_front();
        } else {
            return;
        }
    }
}

} /* namespace modrec */
} /* namespace gr */
