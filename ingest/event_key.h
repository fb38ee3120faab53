// The two fingerprints `tally consume` keeps of every billed call:
//  - DedupKey(source, id): the call's identity, 16 bytes (the first half of
//    SHA-256 over the length-prefixed source and the id). Stored as a uuid
//    primary key: narrow, fixed width, cheap to index. A cryptographic hash,
//    so no one can make a new call look like an old one by choosing its id.
//  - PayloadHash(bytes): tells a retry (the same bytes again) from a conflict
//    (same identity, other bytes). Only ever compared between messages with
//    the same DedupKey, so a fast 128-bit hash is enough.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "base/fingerprint.h"

namespace tally {

Fingerprint DedupKey(std::string_view source, std::string_view id);
Fingerprint PayloadHash(std::string_view bytes);

}  // namespace tally
