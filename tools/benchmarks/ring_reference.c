/* The same SPSC ring in C11 (rigtorp/SPSCQueue's algorithm: cached indices, acquire/release), as the
 * reference for `tools/bench ring`: it shows what this machine allows for one-at-a-time hand-offs. */
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#define CAP 1024
static long buf[CAP];
static _Alignas(128) _Atomic long head; static _Alignas(128) long cachedTail;
static _Alignas(128) _Atomic long tail; static _Alignas(128) long cachedHead;
static long N = 50000000;

void *prod(void *a){ for(long i=0;i<N;){ long t=atomic_load_explicit(&tail,memory_order_relaxed); if(t-cachedHead==CAP){cachedHead=atomic_load_explicit(&head,memory_order_acquire); if(t-cachedHead==CAP) continue;} buf[t&(CAP-1)]=i; atomic_store_explicit(&tail,t+1,memory_order_release); i++;} return 0;}
int main(){ struct timespec s,e; clock_gettime(CLOCK_MONOTONIC,&s); pthread_t p; pthread_create(&p,0,prod,0); long sum=0; for(long n=0;n<N;){ long h=atomic_load_explicit(&head,memory_order_relaxed); if(h==cachedTail){cachedTail=atomic_load_explicit(&tail,memory_order_acquire); if(h==cachedTail) continue;} sum+=buf[h&(CAP-1)]; atomic_store_explicit(&head,h+1,memory_order_release); n++;} pthread_join(p,0); clock_gettime(CLOCK_MONOTONIC,&e); double sec=(e.tv_sec-s.tv_sec)+(e.tv_nsec-s.tv_nsec)/1e9; printf("  C11 reference ring (gcc -O2):       %.1f M hand-offs/s (checksum %ld)\n", N/sec/1e6, sum); }
