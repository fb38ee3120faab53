// Private to pricing: interns short strings (customer ids, model names) to
// dense indices with one open-addressing probe, for the per-event path.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "base/assert.h"

namespace tally::internal {

class StringIndex {
   public:
    StringIndex() : slots_(64), mask_(63) {}

    static uint64_t Hash(std::string_view s) {
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ s.size();
        size_t i = 0;
        for (; i + 8 <= s.size(); i += 8) {
            uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            h = (h ^ w) * 0xff51afd7ed558ccdULL;
            h ^= h >> 32;
        }
        // The last 0..7 bytes, read with fixed-size loads (no memcpy call).
        const size_t rem = s.size() - i;
        const auto* p = reinterpret_cast<const unsigned char*>(s.data() + i);
        uint64_t tail = 0;
        if (rem >= 4) {
            uint32_t a, b;
            std::memcpy(&a, p, 4);
            std::memcpy(&b, p + rem - 4, 4);
            tail = (static_cast<uint64_t>(a) << 32) | b;
        } else if (rem > 0) {
            tail = (static_cast<uint64_t>(p[0]) << 16) | (static_cast<uint64_t>(p[rem / 2]) << 8) | p[rem - 1];
        }
        h = (h ^ tail) * 0xc4ceb9fe1a85ec53ULL;
        return h ^ (h >> 29);
    }

    // The index of `s`, inserting it if new.
    uint32_t Intern(std::string_view s) {
        const uint64_t h = Hash(s);
        const auto tag = static_cast<uint32_t>(h >> 32);
        for (size_t i = h & mask_;; i = (i + 1) & mask_) {
            Slot& slot = slots_[i];
            if (slot.index_plus_one == 0) {
                if ((strings_.size() + 1) * 2 > slots_.size()) {
                    Grow();
                    return Intern(s);
                }
                strings_.emplace_back(s);
                slot = {static_cast<uint32_t>(strings_.size()), tag};
                return slot.index_plus_one - 1;
            }
            if (slot.tag == tag) {
                const std::string& candidate = strings_[slot.index_plus_one - 1];
                if (candidate.size() == s.size() && std::memcmp(candidate.data(), s.data(), s.size()) == 0) {
                    return slot.index_plus_one - 1;
                }
            }
        }
    }

    const std::string& Get(uint32_t index) const { return strings_[index]; }
    size_t size() const { return strings_.size(); }

   private:
    struct Slot {
        uint32_t index_plus_one = 0;
        uint32_t tag = 0;
    };
    void Grow() {
        std::vector<Slot> bigger(slots_.size() * 2);
        const size_t mask = bigger.size() - 1;
        for (size_t k = 0; k < strings_.size(); ++k) {
            const uint64_t h = Hash(strings_[k]);
            size_t i = h & mask;
            while (bigger[i].index_plus_one != 0) i = (i + 1) & mask;
            bigger[i] = {static_cast<uint32_t>(k + 1), static_cast<uint32_t>(h >> 32)};
        }
        TALLY_ASSERT(bigger.size() > slots_.size());
        slots_ = std::move(bigger);
        mask_ = mask;
    }

    std::vector<Slot> slots_;
    std::vector<std::string> strings_;
    size_t mask_;
};

}  // namespace tally::internal
