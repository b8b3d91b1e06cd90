/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <pybind11/complex.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <gnuradio/modrec/symbol_rate_estimator.h>

namespace py = pybind11;
using gr::modrec::symbol_rate_estimator;

void bind_symbol_rate_estimator(py::module& m)
{
    py::class_<symbol_rate_estimator, std::shared_ptr<symbol_rate_estimator>>(
        m,
        "symbol_rate_estimator",
        "The C++ twin of modrec.runtime.oversampling.estimate_samples_per_symbol "
        "(include/gnuradio/modrec/symbol_rate_estimator.h); oversampling.cpp_estimator builds it "
        "with the Python module's constants.")
        .def(py::init<int,
                      double,
                      double,
                      double,
                      const std::vector<double>&,
                      int,
                      double,
                      double,
                      double>(),
             py::arg("segment_len"),
             py::arg("min_sps"),
             py::arg("max_sps"),
             py::arg("line_strength"),
             py::arg("half_sample_taps"),
             py::arg("median_half_width"),
             py::arg("harmonic_share"),
             py::arg("min_line_amplitude"),
             py::arg("max_non_finite"))
        .def(
            "estimate",
            [](symbol_rate_estimator& self,
               py::array_t<std::complex<float>, py::array::c_style | py::array::forcecast> samples,
               int interpolated_by) {
                if (samples.ndim() != 1) {
                    throw py::value_error("samples: expected a 1-D complex array, got " +
                                          std::to_string(samples.ndim()) + " dimensions");
                }
                const auto* data = reinterpret_cast<const gr_complex*>(samples.data());
                const size_t n = static_cast<size_t>(samples.size());
                gr::modrec::symbol_rate_line line;
                {
                    py::gil_scoped_release release; // the estimate touches no Python object
                    line = self.estimate(data, n, interpolated_by);
                }
                return py::make_tuple(line.samples_per_symbol, line.strength);
            },
            py::arg("samples"),
            py::arg("interpolated_by") = 1,
            "(samples_per_symbol, strength) of complex64 samples (n,), n >= 4 segment_len; "
            "samples_per_symbol is NaN when no line reaches line_strength. Raises ValueError for "
            "too few samples or interpolated_by < 1.")
        .def("segment_len", &symbol_rate_estimator::segment_len);
}
