/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <pybind11/pybind11.h>

#include <gnuradio/modrec/version.h>

namespace py = pybind11;

void bind_version(py::module& m)
{
    m.def("version",
          &gr::modrec::version,
          "Version of the compiled gr-modrec library (MAJOR.API.ABI).");
}
