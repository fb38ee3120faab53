// Usage by project, bounded (docs/pricing.md, "Projects"). Events carry a
// free-text `data.project`; rollups keep it as a dimension, but at most
// kProjectsPerPeriodMax distinct projects per customer and billing period:
// the calls of any further project are kept under kOtherProject, so that a
// careless client (a fresh project name per call) cannot multiply the
// ledger's rows. Projects change no price: every invoice is the same summed
// over them.
//
// Which projects are named is decided by one rule, here, for every path:
// the projects of a set of rollups are admitted in the order (customer,
// period, first hour used, name), after those admitted before (the ledger's
// rollup_projects table), while the period has room. The consumer applies
// it per batch inside the batch's transaction, `tally rerate`
// (RebuildRollups) with the same table, and `tally rate` (Rater::Rollups)
// over all its events.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace tally {

// Named projects per customer and billing period; the rest are `other`.
inline constexpr size_t kProjectsPerPeriodMax = 100;
// A longer project name is not admitted (its calls are `other`): the name
// is part of a rollup row's key.
inline constexpr size_t kProjectBytesMax = 128;
// Where the calls of projects beyond the cap go. Reserved: calls that name
// it go there too, and it never takes one of the named places.
inline constexpr std::string_view kOtherProject = "other";

// One project used by a customer in a billing period, first in `first_hour`.
struct ProjectUse {
    std::string customer;
    int32_t period = 0;
    std::string project;
    int32_t first_hour = 0;
};

// Whether `project` can take a named place: not "", not kOtherProject, at
// most kProjectBytesMax bytes.
bool Admissible(std::string_view project);

class ProjectCap {
   public:
    explicit ProjectCap(size_t cap = kProjectsPerPeriodMax);

    // A project admitted before (read back from the ledger). REQUIRES:
    // Admissible(project).
    void Seed(const std::string& customer, int32_t period, const std::string& project);
    // Whether the customer's period has a named place left.
    bool HasRoom(const std::string& customer, int32_t period) const;
    // Admits the uses' admissible projects not admitted yet, in the order
    // (customer, period, first_hour, project), while their period has room.
    // Returns those admitted now, in that order.
    std::vector<ProjectUse> Admit(std::vector<ProjectUse> uses);
    // The name the calls of `project` are kept under: "" for none, the
    // project when admitted, else kOtherProject.
    std::string StoredName(const std::string& customer, int32_t period, const std::string& project) const;
    size_t Admitted(const std::string& customer, int32_t period) const;
    size_t cap() const { return cap_; }

   private:
    size_t cap_;
    std::map<std::pair<std::string, int32_t>, std::set<std::string, std::less<>>> admitted_;
};

// One use per (customer, period, admissible project) of `items`, with its
// earliest hour. Item has customer, period, hour and project members.
template <typename Item>
std::vector<ProjectUse> ProjectUses(const std::vector<Item>& items) {
    std::map<std::tuple<std::string_view, int32_t, std::string_view>, int32_t> first;
    for (const Item& r : items) {
        if (!Admissible(r.project)) continue;
        auto [it, fresh] = first.try_emplace({r.customer, r.period, r.project}, r.hour);
        if (!fresh && r.hour < it->second) it->second = r.hour;
    }
    std::vector<ProjectUse> out;
    out.reserve(first.size());
    for (const auto& [key, hour] : first) {
        out.push_back({std::string(std::get<0>(key)), std::get<1>(key), std::string(std::get<2>(key)), hour});
    }
    return out;
}

// Sets every item's project to cap.StoredName of it.
template <typename Item>
void ApplyProjectCap(const ProjectCap& cap, std::vector<Item>* items) {
    for (Item& r : *items) {
        if (r.project.empty()) continue;
        r.project = cap.StoredName(r.customer, r.period, r.project);
    }
}

}  // namespace tally
