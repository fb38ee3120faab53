#include "base/reject_reason.h"

#include "base/assert.h"

namespace tally {

std::string_view RejectReasonCode(RejectReason reason) {
    switch (reason) {
        case RejectReason::kInvalid: return "invalid";
        case RejectReason::kUnknownCustomer: return "unknown_customer";
        case RejectReason::kNoSubscription: return "no_subscription";
        case RejectReason::kConflict: return "conflict";
        case RejectReason::kUnknownModel: return "unknown_model";
        case RejectReason::kNoPlanVersion: return "no_plan_version";
        case RejectReason::kAboveTopBand: return "above_top_band";
        case RejectReason::kOverflow: return "overflow";
        case RejectReason::kFutureTime: return "future_time";
        case RejectReason::kServedModelUnpriced: return "served_model_unpriced";
    }
    TALLY_UNREACHABLE();
}

std::optional<RejectReason> ParseRejectReason(std::string_view code) {
    for (RejectReason r : kRejectReasons) {
        if (RejectReasonCode(r) == code) return r;
    }
    return std::nullopt;
}

}  // namespace tally
