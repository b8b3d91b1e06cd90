/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#include <gnuradio/modrec/version.h>

#ifndef MODREC_VERSION_STRING
#error "MODREC_VERSION_STRING must be defined by the build (lib/CMakeLists.txt)"
#endif

namespace gr {
namespace modrec {

std::string version() { return MODREC_VERSION_STRING; }

} // namespace modrec
} // namespace gr
