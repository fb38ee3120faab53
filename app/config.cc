// Configuration shared by the commands: flags over environment.
#include <cstdlib>
#include <fstream>
#include <regex>

#include "app/commands.h"

namespace tally {

std::string MaskSecret(const std::string& url) {
    // postgresql://user:secret@host/db -> postgresql://user:***@host/db; password=... likewise.
    static const std::regex kUserInfo(R"((://[^:/@]*):[^@/]*@)");
    static const std::regex kKeyword(R"((password=)\S+)");
    return std::regex_replace(std::regex_replace(url, kUserInfo, "$1:***@"), kKeyword, "$1***");
}

std::string DatabaseUrl(const std::string& flag) {
    if (!flag.empty()) return flag;
    if (const char* env = std::getenv("TALLY_DATABASE_URL")) return env;
    return "";
}

std::string KafkaBrokers(const std::string& flag, const std::string& bootstrap_file) {
    if (!flag.empty()) return flag;
    std::string brokers;
    if (!bootstrap_file.empty()) {
        std::ifstream in(bootstrap_file);
        std::getline(in, brokers);
    }
    if (brokers.empty()) {
        if (const char* env = std::getenv("TALLY_KAFKA_BROKERS")) brokers = env;
    }
    return brokers;
}

}  // namespace tally
