// aisid_sched: the gateways' scheduling policies, with no I/O.
//  - egress.hpp   egress node choice (semantic match + weighted least connections)
//  - ingress.hpp  ingress path choice (load-moved weights + weighted rendezvous)
//  - affinity.hpp flow → target pinning with caller-supplied time
//  - flow.hpp     the flow key and the stable hash both use
// See gateway/README.md for the formulas and why.
#pragma once

#include "affinity.hpp"
#include "egress.hpp"
#include "flow.hpp"
#include "ingress.hpp"
