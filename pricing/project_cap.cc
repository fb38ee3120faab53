#include "pricing/project_cap.h"

#include <algorithm>
#include <tuple>

#include "base/assert.h"

namespace tally {

bool Admissible(std::string_view project) {
    return !project.empty() && project != kOtherProject && project.size() <= kProjectBytesMax;
}

ProjectCap::ProjectCap(size_t cap) : cap_(cap) { TALLY_ASSERT(cap_ > 0); }

void ProjectCap::Seed(const std::string& customer, int32_t period, const std::string& project) {
    TALLY_ASSERT(Admissible(project));
    admitted_[{customer, period}].insert(project);
}

bool ProjectCap::HasRoom(const std::string& customer, int32_t period) const {
    return Admitted(customer, period) < cap_;
}

size_t ProjectCap::Admitted(const std::string& customer, int32_t period) const {
    auto it = admitted_.find({customer, period});
    return it == admitted_.end() ? 0 : it->second.size();
}

std::vector<ProjectUse> ProjectCap::Admit(std::vector<ProjectUse> uses) {
    std::sort(uses.begin(), uses.end(), [](const ProjectUse& a, const ProjectUse& b) {
        return std::tie(a.customer, a.period, a.first_hour, a.project) <
               std::tie(b.customer, b.period, b.first_hour, b.project);
    });
    std::vector<ProjectUse> now;
    for (ProjectUse& u : uses) {
        if (!Admissible(u.project)) continue;
        auto& set = admitted_[{u.customer, u.period}];
        if (set.count(u.project) != 0 || set.size() >= cap_) continue;
        set.insert(u.project);
        TALLY_ASSERT(set.size() <= cap_);
        now.push_back(std::move(u));
    }
    return now;
}

std::string ProjectCap::StoredName(const std::string& customer, int32_t period, const std::string& project) const {
    if (project.empty()) return "";
    if (!Admissible(project)) return std::string(kOtherProject);
    auto it = admitted_.find({customer, period});
    if (it != admitted_.end() && it->second.count(project) != 0) return project;
    return std::string(kOtherProject);
}

}  // namespace tally
