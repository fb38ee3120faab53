#include "pricing/currency.h"

#include <array>
#include <cstring>

#include "base/assert.h"

namespace tally {

namespace {
struct CurrencyInfo {
    const char* code;
    int minor_digits;
};
constexpr std::array kCurrencies = {
    CurrencyInfo{"CNY", 2}, CurrencyInfo{"USD", 2}, CurrencyInfo{"EUR", 2}, CurrencyInfo{"GBP", 2},
    CurrencyInfo{"HKD", 2}, CurrencyInfo{"SGD", 2}, CurrencyInfo{"JPY", 0}, CurrencyInfo{"KRW", 0},
    CurrencyInfo{"INR", 2}, CurrencyInfo{"AUD", 2}, CurrencyInfo{"CAD", 2}, CurrencyInfo{"CHF", 2},
    CurrencyInfo{"TWD", 2}, CurrencyInfo{"BHD", 3}, CurrencyInfo{"KWD", 3},
};
}  // namespace

std::optional<Currency> Currency::FromCode(std::string_view code) {
    for (const auto& info : kCurrencies) {
        if (code == info.code) {
            Currency c;
            std::memcpy(c.code_, info.code, 3);
            c.minor_digits_ = info.minor_digits;
            TALLY_ASSERT(c.valid());
            return c;
        }
    }
    return std::nullopt;
}

}  // namespace tally
