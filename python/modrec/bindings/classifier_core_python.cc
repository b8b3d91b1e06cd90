/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <pybind11/complex.h>
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <gnuradio/logger.h>
#include <gnuradio/modrec/classifier_core.h>
#include <cmath>
#include <cstring>
#include <memory>

namespace py = pybind11;
using gr::modrec::classifier_core;
using gr::modrec::frame_decisions;

namespace {

// A Python callable kept by a C++ block. The block may be destroyed in a scheduler thread, or
// after the interpreter has gone: the reference is dropped with the GIL held, or not at all.
struct held_callable {
    py::object fn;
    explicit held_callable(py::object f) : fn(std::move(f)) {}
    ~held_callable()
    {
        if (Py_IsInitialized()) {
            py::gil_scoped_acquire gil;
            fn = py::object();
        } else {
            fn.release();
        }
    }
};

template <typename T>
void copy_column(const py::object& value, size_t n, std::vector<T>& out, const char* name)
{
    if (out.empty()) {
        return; // the core was made without this tag field
    }
    if (value.is_none()) {
        throw std::runtime_error(std::string("classify returned None for ") + name);
    }
    auto array = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(value);
    if (!array || static_cast<size_t>(array.size()) != n) {
        throw std::runtime_error(std::string("classify returned ") + name + " of " +
                                 std::to_string(array ? array.size() : -1) +
                                 " values for " + std::to_string(n) + " frames");
    }
    std::memcpy(out.data(), array.data(), n * sizeof(T));
}

classifier_core::classify_function wrap_classify(py::object fn, int frame_len, int n_classes)
{
    auto held = std::make_shared<held_callable>(std::move(fn));
    return [held, frame_len, n_classes](
               const gr_complex* frames, size_t n, frame_decisions& out) {
        py::gil_scoped_acquire gil;
        try {
            py::array_t<std::complex<float>> batch(
                { static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(frame_len) });
            std::memcpy(batch.mutable_data(), frames, n * frame_len * sizeof(gr_complex));
            py::tuple result = held->fn(batch);
            if (result.size() != 7) {
                throw std::runtime_error("classify must return 7 values (index, confidence, "
                                         "probs, exits, snr_db, sps_estimate, sps_mismatch)");
            }
            copy_column<int64_t>(result[0], n, out.index, "index");
            copy_column<float>(result[1], n, out.confidence, "confidence");
            copy_column<float>(result[2], n * n_classes, out.probs, "probs");
            copy_column<int64_t>(result[3], n, out.exits, "exits");
            copy_column<float>(result[4], n, out.snr_db, "snr_db");
            copy_column<double>(result[5], n, out.sps_estimate, "sps_estimate");
            copy_column<uint8_t>(result[6], n, out.sps_mismatch, "sps_mismatch");
        } catch (const std::exception& err) {
            // An exception out of work() stops the flowgraph with samples inside: the frames
            // are tagged unknown (confidence 0) and the samples flow on.
            gr::logger log("modrec_classifier");
            log.error("classify callback failed on {:d} frame(s) ({:s}); they are tagged unknown",
                      n,
                      err.what());
            std::fill(out.index.begin(), out.index.end(), -1);
            std::fill(out.confidence.begin(), out.confidence.end(), 0.0f);
            std::fill(out.probs.begin(), out.probs.end(), 0.0f);
            std::fill(out.exits.begin(), out.exits.end(), -1);
            std::fill(out.snr_db.begin(), out.snr_db.end(), std::nanf(""));
            std::fill(out.sps_estimate.begin(), out.sps_estimate.end(), std::nan(""));
            std::fill(out.sps_mismatch.begin(), out.sps_mismatch.end(), 0);
        }
    };
}

classifier_core::observe_function wrap_observe(py::object fn)
{
    if (fn.is_none()) {
        return {};
    }
    auto held = std::make_shared<held_callable>(std::move(fn));
    return [held](const gr_complex* samples, size_t n) {
        py::gil_scoped_acquire gil;
        try {
            if (samples == nullptr) {
                held->fn(py::none());
                return;
            }
            py::array_t<std::complex<float>> chunk(static_cast<py::ssize_t>(n));
            std::memcpy(chunk.mutable_data(), samples, n * sizeof(gr_complex));
            held->fn(chunk);
        } catch (const std::exception& err) {
            gr::logger log("modrec_classifier");
            log.error("observe callback failed ({:s})", err.what());
        }
    };
}

} // namespace

void bind_classifier_core(py::module& m)
{
    py::class_<classifier_core, gr::block, gr::basic_block, std::shared_ptr<classifier_core>>(
        m,
        "classifier_core",
        "The classifier's pass-through core in C++ (include/gnuradio/modrec/classifier_core.h); "
        "modrec.classifier builds it.")
        .def(py::init([](int frame_len,
                         int hop,
                         int max_batch,
                         const std::string& tag_key,
                         const std::vector<std::string>& labels,
                         int n_classes,
                         bool tag_exit,
                         bool tag_snr,
                         bool tag_sps,
                         py::object classify,
                         py::object observe) {
                 if (!PyCallable_Check(classify.ptr())) {
                     throw py::type_error("classify must be callable");
                 }
                 if (!observe.is_none() && !PyCallable_Check(observe.ptr())) {
                     throw py::type_error("observe must be callable or None");
                 }
                 return classifier_core::make(frame_len,
                                              hop,
                                              max_batch,
                                              tag_key,
                                              labels,
                                              n_classes,
                                              tag_exit,
                                              tag_snr,
                                              tag_sps,
                                              wrap_classify(classify, frame_len, n_classes),
                                              wrap_observe(observe));
             }),
             py::arg("frame_len"),
             py::arg("hop"),
             py::arg("max_batch"),
             py::arg("tag_key"),
             py::arg("labels"),
             py::arg("n_classes"),
             py::arg("tag_exit"),
             py::arg("tag_snr"),
             py::arg("tag_sps"),
             py::arg("classify"),
             py::arg("observe") = py::none(),
             "classify(frames complex64 (K, frame_len)) -> (index int64 (K,), confidence "
             "float32 (K,), probs float32 (K, n_classes), exits int64 (K,) or None, snr_db "
             "float32 (K,) or None, sps_estimate float64 (K,) or None, sps_mismatch bool (K,) "
             "or None), the optional ones needed where tag_exit / tag_snr / tag_sps ask for "
             "them; observe(samples complex64 (n,)) sees every chunk taken in, observe(None) "
             "every start.")
        .def("items_in", &classifier_core::items_in, "samples taken in over every run")
        .def("items_out", &classifier_core::items_out, "samples sent out over every run")
        .def("held", &classifier_core::held, "samples held now");
}
