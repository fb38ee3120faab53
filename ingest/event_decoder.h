// Decoding of one CloudEvent (structured JSON, docs/event-format.md) into an
// Event, with every validation rule of DESIGN.md. The Kafka consumer and
// `tally rate` share it. simdjson stays out of this header.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "pricing/event.h"

namespace tally {

class EventDecoder {
   public:
    EventDecoder();
    ~EventDecoder();
    EventDecoder(const EventDecoder&) = delete;
    EventDecoder& operator=(const EventDecoder&) = delete;

    // Decodes `json` into `*event`. Returns false with `*reason` set to a
    // sentence naming the field and what is wrong; `*event` is then
    // unspecified. Never throws on bad input.
    bool Decode(std::string_view json, Event* event, std::string* reason);

   private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace tally
