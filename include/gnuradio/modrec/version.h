/* -*- c++ -*- */
/*
 * Copyright 2026 gr-modrec developers.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 */

#ifndef INCLUDED_MODREC_VERSION_H
#define INCLUDED_MODREC_VERSION_H

#include <gnuradio/modrec/api.h>
#include <string>

namespace gr {
namespace modrec {

/*!
 * \brief Version of the compiled gr-modrec library ("MAJOR.API.ABI").
 *
 * Lets Python check that the bindings it loaded belong to the library it expects
 * (a stale install in another prefix is a common source of confusing errors).
 */
MODREC_API std::string version();

} // namespace modrec
} // namespace gr

#endif /* INCLUDED_MODREC_VERSION_H */
