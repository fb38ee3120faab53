// ISO 4217 currencies and their minor units. Currency is a property of a
// plan; amounts of two currencies never add (Amount, pricing/money.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tally {

class Currency {
   public:
    Currency() = default;
    // Known ISO 4217 codes only ("CNY", "USD", "EUR", "JPY", ...).
    static std::optional<Currency> FromCode(std::string_view code);

    std::string_view code() const { return std::string_view(code_, 3); }
    // Digits of the minor unit: 2 for CNY (fen) and USD (cent), 0 for JPY.
    int minor_digits() const { return minor_digits_; }
    bool valid() const { return code_[0] != '\0'; }
    friend bool operator==(const Currency& a, const Currency& b) { return a.code() == b.code(); }

   private:
    char code_[4] = {0, 0, 0, 0};
    int minor_digits_ = 0;
};

}  // namespace tally
