// Why a message was not billed: one enum for the decoder, the consumer and
// the rater, one mapping to the ledger's dead_letters.reason_code column
// (its CHECK constraint lists the same codes: sql/0002), and one metric label
// per reason (tally_dead_letters_total{reason="..."}).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace tally {

enum class RejectReason : uint8_t {
    kInvalid,              // not a valid event: JSON, a field, a count, a time, an identifier
    kUnknownCustomer,      // subject names no customer of the ledger
    kNoSubscription,       // the customer is on no plan at the call's time
    kConflict,             // (source, id) was billed with another payload
    kUnknownModel,         // the plan version in force prices no such model
    kNoPlanVersion,        // the customer's plan has no version in force at the call's time
    kAboveTopBand,         // the prompt is above the model's top band, which rejects
    kOverflow,             // a count of the call does not fit the arithmetic
    kFutureTime,           // the call's time is further ahead than the allowed clock skew
    kServedModelUnpriced,  // a routed call bills at its served model's price, which the plan version lacks
};

inline constexpr std::array<RejectReason, 10> kRejectReasons = {
    RejectReason::kInvalid,        RejectReason::kUnknownCustomer,
    RejectReason::kNoSubscription, RejectReason::kConflict,
    RejectReason::kUnknownModel,   RejectReason::kNoPlanVersion,
    RejectReason::kAboveTopBand,   RejectReason::kOverflow,
    RejectReason::kFutureTime,     RejectReason::kServedModelUnpriced,
};

// The stored code: "invalid", "unknown_customer", ...
std::string_view RejectReasonCode(RejectReason reason);
std::optional<RejectReason> ParseRejectReason(std::string_view code);

}  // namespace tally
