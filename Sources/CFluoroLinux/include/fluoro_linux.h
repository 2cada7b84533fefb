#ifndef FLUORO_LINUX_H
#define FLUORO_LINUX_H
#include <pthread.h>
#include <stdint.h>

/// A doorbell (event count) on a Linux futex: a consumer that finds its ring empty sleeps on it,
/// and a producer that has just pushed rings it. Ringing costs one atomic increment plus one load when
/// nobody sleeps; no lock is ever taken.
typedef struct {
    uint32_t sequence;
    uint32_t sleepers;
} fluoro_doorbell;

void fluoro_doorbell_init(fluoro_doorbell *bell);
/// Announce that the caller may sleep; returns the sequence to pass to `fluoro_doorbell_wait`.
/// The caller must re-check its condition after this call and before waiting.
uint32_t fluoro_doorbell_prepare(fluoro_doorbell *bell);
/// Withdraw a `prepare` whose condition turned out true.
void fluoro_doorbell_cancel(fluoro_doorbell *bell);
/// Sleep until rung after `seen` was read, or until `timeout_ns` passes.
void fluoro_doorbell_wait(fluoro_doorbell *bell, uint32_t seen, int64_t timeout_ns);
/// Wake every sleeper.
void fluoro_doorbell_ring(fluoro_doorbell *bell);

/// Reduce this thread's timer slack (default 50 µs) so timed sleeps wake on time.
void fluoro_set_thread_timer_slack_ns(unsigned long nanoseconds);

/// Names the calling thread (shown by `top -H`, gdb and perf); longer names are cut to 15 bytes.
void fluoro_set_thread_name(const char *name);

/// Asks for SCHED_FIFO at `priority` (1-99) for the calling thread; returns 0 or an errno value
/// (EPERM without CAP_SYS_NICE or an RLIMIT_RTPRIO allowance).
int fluoro_set_thread_realtime(int priority);

/// The CPU the calling thread is running on (-1 when unknown).
int fluoro_current_cpu(void);

/// Lets the calling thread run on every CPU the process may use except `cpu`; returns 0 or an errno value
/// (EINVAL when no other CPU is allowed: the affinity is left as it was).
int fluoro_keep_thread_off_cpu(int cpu);

/// Gives the calling thread the scheduling policy and priority of thread `from` where they differ; returns 0 or
/// an errno value.
int fluoro_follow_thread_scheduling(pthread_t from);


/// O_TMPFILE (a function-like combination of flags the Swift Glibc module does not import).
int fluoro_o_tmpfile(void);

#endif
