// Linked into TSan builds only (TALLY_SANITIZE=thread). Debian's librdkafka
// starts its threads with C11 thrd_create, which glibc runs without going
// through pthread_create, so ThreadSanitizer never learns of those threads
// and crashes in them. Defining thrd_create in the executable makes
// librdkafka's calls resolve here, to pthread_create, which TSan intercepts.
// thrd_join below reads the int result back from the void* this returns.
#include <pthread.h>
#include <threads.h>

#include <cstdint>
#include <new>

namespace {

struct Start {
    thrd_start_t func;
    void* arg;
};

void* Trampoline(void* p) {
    const Start start = *static_cast<Start*>(p);
    delete static_cast<Start*>(p);
    const int result = start.func(start.arg);
    return reinterpret_cast<void*>(static_cast<intptr_t>(result));
}

}  // namespace

extern "C" int thrd_create(thrd_t* thread, thrd_start_t func, void* arg) {
    auto* start = new (std::nothrow) Start{func, arg};
    if (start == nullptr) return thrd_nomem;
    const int rc = pthread_create(reinterpret_cast<pthread_t*>(thread), nullptr, Trampoline, start);
    if (rc != 0) {
        delete start;
        return rc == 11 /* EAGAIN */ ? thrd_nomem : thrd_error;
    }
    return thrd_success;
}

// Detach and join of those threads go through pthread too, so TSan sees
// every thread's end.
extern "C" int thrd_detach(thrd_t thread) {
    return pthread_detach(static_cast<pthread_t>(thread)) == 0 ? thrd_success : thrd_error;
}

extern "C" int thrd_join(thrd_t thread, int* result) {
    void* value = nullptr;
    if (pthread_join(static_cast<pthread_t>(thread), &value) != 0) return thrd_error;
    if (result != nullptr) *result = static_cast<int>(reinterpret_cast<intptr_t>(value));
    return thrd_success;
}
