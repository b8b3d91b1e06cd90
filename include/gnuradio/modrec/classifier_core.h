/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_MODREC_CLASSIFIER_CORE_H
#define INCLUDED_MODREC_CLASSIFIER_CORE_H

#include <gnuradio/block.h>
#include <gnuradio/modrec/api.h>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace gr {
namespace modrec {

/*!
 * \brief What the model says about a batch of K frames (filled by the classify callback).
 *
 * Each vector holds K entries (probs K x n_classes, row-major); the optional ones stay empty
 * when the core was made without the matching tag field.
 */
struct MODREC_API frame_decisions {
    std::vector<int64_t> index;        //!< class index per frame, -1 = unknown (the last label)
    std::vector<float> confidence;     //!< top probability per frame
    std::vector<float> probs;          //!< K x n_classes class probabilities
    std::vector<int64_t> exits;        //!< exit per frame (tag_exit)
    std::vector<float> snr_db;         //!< SNR estimate per frame, dB (tag_snr)
    std::vector<double> sps_estimate;  //!< samples per symbol estimate per frame (tag_sps)
    std::vector<uint8_t> sps_mismatch; //!< wrong oversampling per frame, 0/1 (tag_sps)
};

/*!
 * \brief The classifier's pass-through core: frames a complex64 stream, hands complete frames to
 * a classify callback in batches, and tags each frame's first sample with the decision.
 * \ingroup modrec
 *
 * The C++ twin of the Python core in python/modrec/classifier.py (used there for streams that are
 * framed as they are; the resampled path stays in Python). Frames of \p frame_len samples start
 * at absolute offsets 0, hop, 2 hop, ...; every sample is held until each frame starting at or
 * before it is classified, because a tag only reaches downstream if it is added before downstream
 * reads the sample. The output is the input, bit-exact; upstream tags are re-emitted at their
 * offsets. Each frame's tag (key \p tag_key, the same dict on the "classification" message port)
 * holds class, index, confidence, probs, frame_len, frame_start, and exit / snr_db /
 * sps_estimate + sps_mismatch where the flags ask for them.
 *
 * \p classify gets K frames as K x frame_len contiguous gr_complex samples and fills a
 * frame_decisions; it is called with the frames each work() call completes, and, while the block
 * is behind the stream (a call starts within a millisecond of the last one's return: its input
 * was waiting), with up to \p max_batch of them gathered over several calls for at most 10 ms,
 * since larger batches cost less per frame (should upstream stall, neither ending nor sending,
 * right after such a call, the gathered frames wait for its next samples or the stop); and with
 * those left at the end of the stream and at a stop. \p observe (may be
 * empty) gets every chunk of samples taken in, before the frames it completes are classified
 * (the oversampling check reads them), and (nullptr, 0) at every start: a new run begins. Neither may throw: an exception out of work() stops the
 * flowgraph (the Python bindings catch Python errors and tag the frames unknown).
 *
 * End of stream: the tail held behind an incomplete frame is released, untagged, when upstream
 * is done. stop() keeps what is held and start() sends it first (lock()/unlock() restarts item
 * counters at 0).
 */
class MODREC_API classifier_core : virtual public gr::block
{
public:
    typedef std::shared_ptr<classifier_core> sptr;
    typedef std::function<void(const gr_complex* frames, size_t n_frames, frame_decisions& out)>
        classify_function;
    typedef std::function<void(const gr_complex* samples, size_t n)> observe_function;

    /*!
     * \param frame_len samples per frame (> 0)
     * \param hop samples between frame starts (> 0)
     * \param max_batch the most frames gathered while the block is behind the stream (> 0;
     * 1: never gathered)
     * \param tag_key key of the frame tags
     * \param labels decision labels: the model's classes (noise as "noise"), "unknown" last
     * \param n_classes columns of probs (labels.size() - 1)
     * \param tag_exit, tag_snr, tag_sps which optional fields the tags carry
     * \param classify, observe the callbacks (above)
     * Throws std::invalid_argument for a non-positive frame_len, hop or max_batch, an empty label list, or
     * an empty classify callback.
     */
    static sptr make(int frame_len,
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

    //! samples taken in / sent out over every run
    virtual uint64_t items_in() const = 0;
    virtual uint64_t items_out() const = 0;
    //! samples held now (behind an incomplete frame, or kept at the last stop)
    virtual size_t held() const = 0;
};

} // namespace modrec
} // namespace gr

#endif /* INCLUDED_MODREC_CLASSIFIER_CORE_H */
