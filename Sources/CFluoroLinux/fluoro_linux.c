#define _GNU_SOURCE
#include "fluoro_linux.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void fluoro_doorbell_init(fluoro_doorbell *bell) {
    __atomic_store_n(&bell->sequence, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&bell->sleepers, 0, __ATOMIC_SEQ_CST);
}

uint32_t fluoro_doorbell_prepare(fluoro_doorbell *bell) {
    __atomic_fetch_add(&bell->sleepers, 1, __ATOMIC_SEQ_CST);
    return __atomic_load_n(&bell->sequence, __ATOMIC_SEQ_CST);
}

void fluoro_doorbell_cancel(fluoro_doorbell *bell) {
    __atomic_fetch_sub(&bell->sleepers, 1, __ATOMIC_SEQ_CST);
}

void fluoro_doorbell_wait(fluoro_doorbell *bell, uint32_t seen, int64_t timeout_ns) {
    struct timespec timeout = { .tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000 };
    syscall(SYS_futex, &bell->sequence, FUTEX_WAIT_PRIVATE, seen, &timeout, NULL, 0);
    __atomic_fetch_sub(&bell->sleepers, 1, __ATOMIC_SEQ_CST);
}

void fluoro_doorbell_ring(fluoro_doorbell *bell) {
    __atomic_fetch_add(&bell->sequence, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&bell->sleepers, __ATOMIC_SEQ_CST) != 0) {
        syscall(SYS_futex, &bell->sequence, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
    }
}

void fluoro_set_thread_timer_slack_ns(unsigned long nanoseconds) {
    prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0);
}

void fluoro_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
    pthread_setname_np(pthread_self(), truncated);
}

int fluoro_set_thread_realtime(int priority) {
    struct sched_param parameters = { .sched_priority = priority };
    return pthread_setschedparam(pthread_self(), SCHED_FIFO, &parameters);
}

int fluoro_current_cpu(void) {
    return sched_getcpu();
}

int fluoro_keep_thread_off_cpu(int cpu) {
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return errno;
    // Widen back to every CPU the process may use (an earlier call may have narrowed this thread).
    cpu_set_t process;
    if (sched_getaffinity(getpid(), sizeof process, &process) == 0) allowed = process;
    if (cpu >= 0 && cpu < CPU_SETSIZE) CPU_CLR(cpu, &allowed);
    if (CPU_COUNT(&allowed) == 0) return EINVAL;
    return pthread_setaffinity_np(pthread_self(), sizeof allowed, &allowed);
}

int fluoro_follow_thread_scheduling(pthread_t from) {
    int policy, own_policy;
    struct sched_param parameters, own;
    int result = pthread_getschedparam(from, &policy, &parameters);
    if (result != 0) return result;
    result = pthread_getschedparam(pthread_self(), &own_policy, &own);
    if (result == 0 && own_policy == policy && own.sched_priority == parameters.sched_priority) return 0;
    return pthread_setschedparam(pthread_self(), policy, &parameters);
}

int fluoro_o_tmpfile(void) { return O_TMPFILE; }
